"""The HTTP face of the assistant: a REST API and an OpenAI-compatible one over the same service.

Why a third face: the CLI serves whoever owns the index and the Streamlit app serves people
in a browser; teams that want the assistant inside their own tools (a chat client that speaks
the OpenAI protocol, a script, another site) need HTTP. Like the other faces, this package only
formats: every answer, every document list and every right comes from `assistant.service`, so
the three faces say the same thing to the same caller. Callers present an API key
(`Authorization: Bearer fpa_…`) whose role decides what they see and may change.

Serve it with `uvicorn assistant.api.app:create_app --factory` (settings from the environment).
"""
