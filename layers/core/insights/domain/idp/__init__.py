"""Identity providers, the pure part: SCIM provisioning, OIDC and SAML sign-in attributes."""
