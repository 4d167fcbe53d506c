"""Streamlit entry point; stays thin: the UI lives in `assistant/ui/`."""

from assistant.ui.main import main

main()
