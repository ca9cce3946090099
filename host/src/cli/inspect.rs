//! `recotem inspect`.

use super::InspectArgs;
use crate::artifact::keys::{KeyRing, SigningKey};
use crate::artifact::store::{self, Caps};
use crate::artifact::Container;
use crate::error::{Error, Result};
use crate::events::Event;

pub(super) fn run(args: InspectArgs) -> u8 {
    super::report("inspect", inspect(&args))
}

fn inspect(args: &InspectArgs) -> Result<String> {
    // The dev gate is checked before any I/O.
    let dev = args.dev.check()?;
    let caps = Caps::from_env()?;
    let (bytes, from) = store::read_artifact(&args.artifact, caps.artifact)?;
    // Structural faults win over missing keys.
    let container = Container::parse(&bytes, caps.payload).map_err(|e| e.context(from.display()))?;
    let ring = match KeyRing::from_env()? {
        Some(ring) => {
            if dev {
                Event::warn("dev_allow_unsigned_ignored")
                    .field("reason", "RECOTEM_SIGNING_KEYS is set; verifying with it")
                    .emit();
            }
            ring
        }
        None if dev => KeyRing::single(SigningKey::dev()),
        None => {
            return Err(Error::Config(
                "RECOTEM_SIGNING_KEYS is not set: inspect needs the key ring to verify the HMAC \
                 (or --dev-allow-unsigned with RECOTEM_ENV=development for dev-signed artifacts)"
                    .into(),
            ));
        }
    };
    let verified = container.verify(&ring).map_err(|e| e.context(from.display()))?;
    let header = serde_json::to_string_pretty(&serde_json::Value::Object(verified.header))
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(format!("HMAC: OK  (kid='{}')\n{header}", verified.kid))
}
