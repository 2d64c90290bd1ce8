-- Tenant-safe model credentials (issue 9 item 2, docs/security.md).
-- A binding's key is either sealed here (AES-256-GCM under the server's secrets key, bound
-- to the model id and base_url; see runtime/secret_box.py) or, for global models only, the
-- name of an environment variable the operator allows. Never both.
-- Existing tenant bindings that name a variable are kept as they are and refused at run
-- time with a clear error (runtime/model_credentials.py): the owner sets an api_key instead.
ALTER TABLE model_bindings ADD COLUMN api_key_ciphertext bytea;
ALTER TABLE model_bindings ADD CONSTRAINT model_bindings_one_key_source
    CHECK (api_key_ciphertext IS NULL OR api_key_env IS NULL);
