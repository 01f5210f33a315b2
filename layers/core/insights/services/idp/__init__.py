"""Identity providers: SCIM provisioning, OIDC ID tokens, SAML Responses."""
