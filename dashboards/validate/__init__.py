"""Validators: PromQL, LogQL, SQL and panel structure; run by the build and by the tests."""
