"""Test doubles that need no network: a local OpenAI-compatible server (:mod:`.openai_server`).

The project's tests and benchmarks use them, and so can yours: point a judge or a candidate model at
``FakeOpenAIServer().base_url`` to grade without a key.
"""
