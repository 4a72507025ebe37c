//! Peer identity: a long-term Ed25519 key per peer (the Carrier SDK's user id was a public
//! key). A peer with an identity signs every offer and answer it makes; the signature
//! covers the whole description as written without the signature line — the ephemeral
//! key included — so whoever holds the identity's secret is the one the keys are agreed
//! with. Checking *which* identity is acceptable is the application's call (an address
//! book, a pinned key), made before `reply` or `start_with`.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::Error;
use crate::sdp::SessionDescription;

/// The public identity of a secret identity key.
pub(crate) fn public_of(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// Signs `desc` with the identity `secret`: sets its identity and signature fields.
pub(crate) fn sign(secret: &[u8; 32], desc: &mut SessionDescription) {
    let key = SigningKey::from_bytes(secret);
    desc.identity = Some(key.verifying_key().to_bytes().to_vec());
    desc.signature = None;
    let text = desc.to_sdp_string();
    desc.signature = Some(key.sign(text.as_bytes()).to_bytes().to_vec());
}

/// Checks a received description's signature. Returns the verified identity, or `None`
/// if the description carries none; an identity without a valid signature (or a
/// signature without an identity) is [`Error::BadSignature`].
pub(crate) fn verify(desc: &SessionDescription) -> Result<Option<[u8; 32]>, Error> {
    let (identity, signature) = match (&desc.identity, &desc.signature) {
        (None, None) => return Ok(None),
        (Some(i), Some(s)) => (i, s),
        _ => return Err(Error::BadSignature),
    };
    let identity = <[u8; 32]>::try_from(identity.as_slice()).map_err(|_| Error::BadSignature)?;
    let signature = <[u8; 64]>::try_from(signature.as_slice()).map_err(|_| Error::BadSignature)?;
    let key = VerifyingKey::from_bytes(&identity).map_err(|_| Error::BadSignature)?;
    let mut unsigned = desc.clone();
    unsigned.signature = None;
    key.verify_strict(
        unsigned.to_sdp_string().as_bytes(),
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| Error::BadSignature)?;
    Ok(Some(identity))
}
