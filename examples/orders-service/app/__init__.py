"""A small orders service: another shape than the reference service, instrumented the way a user would."""
