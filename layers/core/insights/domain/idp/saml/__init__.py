"""SAML sign-in attributes, the pure part: configuration, the Response, its XML."""
