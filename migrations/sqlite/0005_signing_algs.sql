-- ES256 and EdDSA keys beside RS256: a client may ask for its ID tokens in one of them
-- (OIDC Dynamic Client Registration's id_token_signed_response_alg; NULL = RS256).
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT;
