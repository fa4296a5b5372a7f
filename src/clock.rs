//! Time, injected. Detectors read `event.time`; the clock only dates state expiry and the
//! wall-clock parts of a run (lag, rate limits). Replays use event time so that a year-old
//! log ages its state as it did then.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Where "now" comes from.
#[derive(Debug)]
pub enum Clock {
    /// The system clock: live polling, Lambda.
    System,
    /// A fixed instant: tests.
    Fixed(DateTime<Utc>),
    /// The newest event time seen so far (a watermark): replays of old logs.
    EventTime(Mutex<Option<DateTime<Utc>>>),
}

impl Clock {
    /// A clock driven by the events processed.
    pub fn event_time() -> Clock {
        Clock::EventTime(Mutex::new(None))
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
            Clock::EventTime(w) => w
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        }
    }

    /// Tells an event-time clock that events up to `t` were seen.
    pub fn observe(&self, t: DateTime<Utc>) {
        if let Clock::EventTime(w) = self {
            let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
            if w.is_none_or(|cur| t > cur) {
                *w = Some(t);
            }
        }
    }
}
