//! `recotem inspect`: verify an artifact and print its header, without
//! decoding the payload.
//!
//! Order (CLI-16): dev gate (before any I/O) → caps (payload ≤ artifact, else
//! exit 8) → bounded read, following one append_sha pointer → structure →
//! key ring (missing: exit 8; structural faults above win with exit 5) →
//! HMAC → header JSON → print. Every failure names the file and says what is
//! wrong; none prints key material.

use super::InspectArgs;
use crate::artifact::keys::{self, KeyRing, SigningKey};
use crate::artifact::store;
use crate::artifact::Container;
use crate::error::{ArtifactFault, Error, Kind, Result};
use crate::events::Event;

pub(super) fn run(args: InspectArgs) -> u8 {
    super::report("inspect", inspect(&args))
}

fn inspect(args: &InspectArgs) -> Result<String> {
    let dev = args.dev.check()?;
    let caps = crate::settings::get().caps()?;
    let (bytes, from) = store::read_artifact(&args.artifact, caps.artifact)?;
    if from != args.artifact {
        Event::info("artifact_pointer_followed")
            .field("pointer", args.artifact.display().to_string())
            .field("artifact", from.display().to_string())
            .emit();
    }
    let container = Container::parse(&bytes, caps.payload).map_err(|e| e.context(from.display()))?;
    let ring = match crate::settings::get().key_ring()? {
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
            return Err(Error::config(
                "RECOTEM_SIGNING_KEYS is not set: inspect needs the key ring to verify the HMAC \
                 (or --dev-allow-unsigned with RECOTEM_ENV=development for dev-signed artifacts)",
            ));
        }
    };
    ring.log_built();
    let verified = container.verify(&ring).map_err(|e| {
        let event = match e.kind() {
            Kind::Artifact(ArtifactFault::UnknownKid) => Some("artifact_kid_unknown"),
            Kind::Artifact(ArtifactFault::HmacMismatch) => Some("artifact_hmac_mismatch"),
            _ => None,
        };
        if let Some(name) = event {
            Event::error(name)
                .field("kid", keys::sanitize_kid(container.kid))
                .field("artifact", from.display().to_string())
                .field("version", container.version)
                .emit();
        }
        e.context(from.display())
    })?;
    let header = serde_json::to_string_pretty(&serde_json::Value::Object(verified.header))
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(format!("HMAC: OK  (kid='{}')\n{header}", verified.kid))
}
