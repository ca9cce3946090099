//! `recotem keygen`: a signing key (artifact HMAC) or an API key (serve).
//!
//! Output is four `name=value` lines, meant to be read by people and by
//! scripts (`grep '^env_entry=' | cut -d= -f2-`). The fingerprint and the
//! hash are safe to log; the plaintext and the env entry are secrets.

use base64::Engine as _;

use super::KeygenArgs;
use crate::artifact::keys::{self, KeyRing};
use crate::error::{Error, Result};

pub(super) fn run(args: KeygenArgs) -> u8 {
    super::report("keygen", keygen(&args))
}

fn keygen(args: &KeygenArgs) -> Result<String> {
    let kind = args.kind.as_str();
    if kind != "signing" && kind != "api" {
        return Err(Error::config(format!("keygen --type {:?}: use `signing` or `api`", args.kind)));
    }
    let kid = match &args.kid {
        Some(k) => {
            keys::check_kid(k).map_err(|why| Error::config(format!("keygen --kid: {why}")))?;
            k.clone()
        }
        None => crate::util::random_hex(4)?,
    };
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| Error::internal(format!("the OS random source failed: {e}")))?;
    if kind == "signing" {
        let hex_key = hex::encode(secret);
        // Parse it back exactly as RECOTEM_SIGNING_KEYS will be parsed.
        let ring = KeyRing::parse(&format!("{kid}:{hex_key}"))?;
        Ok(format!(
            "kid={kid}\nplaintext={hex_key}\nfingerprint={}  # matches the signing_keyring_built log; NOT for config\n\
             env_entry=RECOTEM_SIGNING_KEYS={kid}:{hex_key}",
            ring.active().fingerprint()
        ))
    } else {
        let plaintext = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let hash = keys::api_key_hash(&plaintext);
        Ok(format!("kid={kid}\nplaintext={plaintext}\nhash=sha256:{hash}\nenv_entry=RECOTEM_API_KEYS={kid}:sha256:{hash}"))
    }
}
