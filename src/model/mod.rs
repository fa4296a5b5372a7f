//! The data every stage shares: [`IdentityEvent`] (one model for every provider) and
//! [`Finding`] (what detectors report), plus their OCSF rendering in [`ocsf`].

mod event;
mod finding;
pub mod ocsf;

pub use event::{
    Activity, Actor, Asn, AuthFacts, Endpoint, EventClass, GeoLocation, IdentityEvent, OAuthGrant,
    PrincipalType, Provider, RecordKind, Status, Target,
};
pub use finding::{Attack, Evidence, Finding, Severity, finding_uid};
