"""Streamlit entry point; stays thin: the UI lives in `assistant/ui.py`."""

from assistant.ui.main import main

main()
