"""Text helpers every step shares: sentences, Thai, languages, redaction of secrets."""
