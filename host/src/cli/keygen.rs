//! `recotem keygen`.

use super::KeygenArgs;
use crate::artifact::keys::SigningKey;
use crate::error::{Error, Result};

pub(super) fn run(args: KeygenArgs) -> u8 {
    super::report("keygen", keygen(&args))
}

fn keygen(args: &KeygenArgs) -> Result<String> {
    let kid = match &args.kid {
        Some(k) => k.clone(),
        None => crate::util::random_hex(4)?,
    };
    match args.kind.as_str() {
        "signing" => {
            let hex_key = crate::util::random_hex(32)?;
            // Validate the kid exactly as RECOTEM_SIGNING_KEYS will.
            let ring = crate::artifact::KeyRing::parse(&format!("{kid}:{hex_key}"))?;
            let key: &SigningKey = ring.active();
            Ok(format!(
                "kid={kid}\nplaintext={hex_key}\nfingerprint={}  # matches the signing_keyring_built log; NOT for config\nenv_entry=RECOTEM_SIGNING_KEYS={kid}:{hex_key}",
                key.fingerprint()
            ))
        }
        "api" => Err(Error::Config(
            "keygen --type api: API keys belong to `recotem serve`, which this version does not include yet".into(),
        )),
        other => Err(Error::Config(format!("keygen --type {other:?}: use `signing` or `api`"))),
    }
}
