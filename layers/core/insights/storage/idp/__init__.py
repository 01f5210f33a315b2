"""Storage of identity providers: SCIM users, lookups and tokens, IdP configs, SAML replays."""
