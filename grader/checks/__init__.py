"""Hidden graders, one pytest file per topic (test_TOPIC.py)."""
