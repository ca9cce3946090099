//! `recotem inspect`: verify an artifact and print its header, without
//! decoding the payload.
//!
//! ARTIFACT is a local path or a `file://` URL (CLI-15); other schemes are
//! not read by this version (exit 5).
//!
//! Order (CLI-16): dev gate (before any I/O; CLI-19 asks only for
//! RECOTEM_ENV=development: inspect never decodes the payload, so nothing it
//! loads can run) → caps (payload ≤ artifact, else
//! exit 8) → bounded read, following one append_sha pointer → structure →
//! key ring (missing: exit 8; structural faults above win with exit 5) →
//! HMAC → header JSON → print. Every failure names the file and says what is
//! wrong; none prints key material.

use std::path::PathBuf;

use super::InspectArgs;
use crate::artifact::keys::{self, KeyRing, SigningKey};
use crate::artifact::store;
use crate::artifact::Container;
use crate::error::{ArtifactFault, Error, Kind, Result};
use crate::events::Event;
use crate::recipe::paths;

pub(super) fn run(args: InspectArgs) -> u8 {
    super::report("inspect", inspect(&args))
}

fn inspect(args: &InspectArgs) -> Result<String> {
    let dev = args.dev_allow_unsigned;
    if dev {
        super::require_development("--dev-allow-unsigned")?;
    }
    let caps = crate::settings::get().caps()?;
    let path = artifact_path(&args.artifact)?;
    let (bytes, from) = store::read_artifact(&path, caps.artifact)?;
    if from != path {
        Event::info("artifact_pointer_followed")
            .field("pointer", path.display().to_string())
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

/// The local file ARTIFACT names (a path or a `file://` URL), or why this
/// version cannot read it (exit 5, as a missing storage backend is).
fn artifact_path(raw: &std::ffi::OsStr) -> Result<PathBuf> {
    let Some(text) = raw.to_str() else { return Ok(PathBuf::from(raw)) };
    paths::local_path(text).ok_or_else(|| match paths::split_scheme(text).scheme.as_deref() {
        Some("file") => {
            Error::artifact("the artifact's file:// URL names a host; use a local path or file:///absolute/path")
        }
        scheme => Error::artifact(format!(
            "{}:// artifacts are not read by this version of recotem yet; copy the artifact to a local file",
            scheme.unwrap_or_default()
        )),
    })
}
