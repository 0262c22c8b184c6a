"""``python -m steer_llm_sdk.testing``: run the LLM simulator until Ctrl-C."""

from steer_llm_sdk.testing.runner import main

if __name__ == "__main__":
    main()
