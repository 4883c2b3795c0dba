"""Provider parsers: each turns one provider's payload into `ProviderEvent`s (functions/messages/models/message.py)."""
