//! A campaign rule: where, when, who, what and how often — and the pure checks on it.
//!
//! ```json
//! {"id": "lipstick-120", "name": "Lipstick, 2 minutes in cosmetics",
//!  "stores": ["store-001"], "zones": ["cosmetics"],
//!  "trigger": {"kind": "dwell", "seconds": 120},
//!  "schedule": {"days": ["mon","tue","wed","thu","fri","sat"], "from": "09:00", "to": "21:00"},
//!  "quiet_hours": {"from": "12:00", "to": "13:00"},
//!  "audience": {"segment": "cosmetics-lover & !staff"},
//!  "offer": {"title": "20% off lipstick", "text": "Today only", "expires_after_s": 7200},
//!  "cap": {"per_shopper": 1, "window_s": 86400}, "budget": 500, "holdout_permille": 100}
//! ```
//!
//! - **Where**: `stores` and `zones` (empty = all). **When**: the trigger — a dwell milestone the
//!   gateway emitted (`dwell`, `seconds` must be one of the gateways' milestones), a visit start
//!   (`entry`), or the n-th visit (`visit`, `number`) — within `schedule` (store local time) and
//!   outside `quiet_hours`.
//! - **Who**: `audience` — a segment expression over tags, required `tags`, loyalty classes. A
//!   campaign with any audience condition is *personalised* and only reaches shoppers who consented
//!   to profiling; one without is the non-personalised offer everyone who opted in may receive
//!   (PIPL art. 24: personalised marketing always has a non-personalised alternative).
//! - **What**: the offer and how long the coupon is valid. **How often**: at most `per_shopper`
//!   coupons per shopper per `window_s`, at most `budget` coupons in all; `holdout_permille` of the
//!   qualifying shoppers (deterministically, [`super::holdout`]) get nothing, so lift is measurable.

use crate::error::{DomainError, DomainResult};
use crate::profiles::segment::Expr;
use jiff::civil::{Time, Weekday};
use serde::{Deserialize, Serialize};

/// What fires a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A dwell milestone: the shopper has stayed `seconds` in one of the zones.
    Dwell { seconds: u32 },
    /// A visit begins (the shopper is inside the store).
    Entry,
    /// The shopper's `number`-th visit begins (1 = first ever).
    Visit { number: u32 },
}

/// A daily window in store local time, `HH:MM`; `to` before `from` wraps past midnight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub from: String,
    pub to: String,
}

/// When a campaign runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `mon`…`sun`; empty = every day.
    #[serde(default)]
    pub days: Vec<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// Campaign start and end, unix ms.
    #[serde(default)]
    pub start_ms: Option<i64>,
    #[serde(default)]
    pub end_ms: Option<i64>,
}

/// Who qualifies. Any condition makes the campaign personalised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// A tag expression (`a & !b | c`).
    #[serde(default)]
    pub segment: Option<String>,
    /// Tags the shopper must all have.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `first_time`, `daily`, `weekly`, `occasional`; empty = any.
    #[serde(default)]
    pub loyalty: Vec<String>,
}

impl Audience {
    pub fn is_personalised(&self) -> bool {
        self.segment.is_some() || !self.tags.is_empty() || !self.loyalty.is_empty()
    }
}

/// The offer on the coupon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    pub title: String,
    #[serde(default)]
    pub text: String,
    /// Seconds the coupon stays valid after issue.
    pub expires_after_s: u32,
}

/// Per-shopper frequency cap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub per_shopper: u32,
    pub window_s: u32,
}

impl Default for Cap {
    fn default() -> Self {
        Cap {
            per_shopper: 1,
            window_s: 86_400,
        }
    }
}

/// A campaign as created through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub zones: Vec<String>,
    pub trigger: Trigger,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub quiet_hours: Option<Window>,
    #[serde(default)]
    pub audience: Audience,
    pub offer: Offer,
    #[serde(default)]
    pub cap: Cap,
    /// Coupons in all; none = unlimited.
    #[serde(default)]
    pub budget: Option<u64>,
    /// Qualifying shoppers held out, per mille (0..=500).
    #[serde(default)]
    pub holdout_permille: u16,
}

/// Loyalty classes an audience may name.
pub const LOYALTY: &[&str] = &["first_time", "daily", "weekly", "occasional"];

fn parse_hhmm(s: &str) -> Result<Time, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not HH:MM"))?;
    let h: i8 = h.parse().map_err(|_| format!("{s:?} is not HH:MM"))?;
    let m: i8 = m.parse().map_err(|_| format!("{s:?} is not HH:MM"))?;
    Time::new(h, m, 0, 0).map_err(|_| format!("{s:?} is not a time of day"))
}

fn parse_day(s: &str) -> Result<Weekday, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return Err(format!("{s:?} is not a day (mon…sun)")),
    })
}

fn in_window(t: Time, from: Time, to: Time) -> bool {
    if from <= to {
        t >= from && t < to
    } else {
        t >= from || t < to
    }
}

/// A validated campaign: the spec plus what was parsed out of it.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub spec: CampaignSpec,
    pub segment: Option<Expr>,
    days: Vec<Weekday>,
    hours: Option<(Time, Time)>,
    quiet: Option<(Time, Time)>,
    /// The number coupon codes carry (offline display): the first 4 bytes of SHA-256(id).
    pub number: u32,
}

impl Campaign {
    /// Checks a spec; errors say which field and what to change.
    pub fn new(spec: CampaignSpec) -> DomainResult<Campaign> {
        let bad = |m: String| DomainError::Invalid(m);
        dwell_shared::topic::validate_id(&spec.id).map_err(|e| bad(format!("id: {e}")))?;
        if spec.name.trim().is_empty() || spec.offer.title.trim().is_empty() {
            return Err(bad("name and offer.title must not be empty".into()));
        }
        if spec.offer.expires_after_s == 0 {
            return Err(bad("offer.expires_after_s must be at least 1".into()));
        }
        if spec.cap.per_shopper == 0 || spec.cap.window_s == 0 {
            return Err(bad(
                "cap.per_shopper and cap.window_s must be at least 1".into()
            ));
        }
        if spec.holdout_permille > 500 {
            return Err(bad("holdout_permille must be 0..=500".into()));
        }
        match spec.trigger {
            Trigger::Dwell { seconds: 0 } | Trigger::Visit { number: 0 } => {
                return Err(bad("trigger seconds/number must be at least 1".into()));
            }
            _ => {}
        }
        for l in &spec.audience.loyalty {
            if !LOYALTY.contains(&l.as_str()) {
                return Err(bad(format!(
                    "audience.loyalty {l:?} is not one of {LOYALTY:?}"
                )));
            }
        }
        for t in &spec.audience.tags {
            crate::profiles::shoppers::check_tag(t)?;
        }
        let segment = spec
            .audience
            .segment
            .as_deref()
            .map(Expr::parse)
            .transpose()
            .map_err(|e| bad(format!("audience.segment: {e}")))?;
        let days = spec
            .schedule
            .days
            .iter()
            .map(|d| parse_day(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("schedule.days: {e}")))?;
        let hours = match (&spec.schedule.from, &spec.schedule.to) {
            (Some(f), Some(t)) => Some((
                parse_hhmm(f).map_err(|e| bad(format!("schedule.from: {e}")))?,
                parse_hhmm(t).map_err(|e| bad(format!("schedule.to: {e}")))?,
            )),
            (None, None) => None,
            _ => return Err(bad("schedule needs both from and to, or neither".into())),
        };
        let quiet = match &spec.quiet_hours {
            Some(w) => Some((
                parse_hhmm(&w.from).map_err(|e| bad(format!("quiet_hours.from: {e}")))?,
                parse_hhmm(&w.to).map_err(|e| bad(format!("quiet_hours.to: {e}")))?,
            )),
            None => None,
        };
        use sha2::Digest;
        let h = sha2::Sha256::digest(spec.id.as_bytes());
        let number = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        Ok(Campaign {
            spec,
            segment,
            days,
            hours,
            quiet,
            number,
        })
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// Whether the trigger, place and time fit (not yet who).
    pub fn fits(
        &self,
        trigger: &Trigger,
        store: &str,
        zone: Option<&str>,
        local: &jiff::Zoned,
    ) -> bool {
        let s = &self.spec;
        let trigger_ok = match (&s.trigger, trigger) {
            (Trigger::Dwell { seconds: a }, Trigger::Dwell { seconds: b }) => a == b,
            (Trigger::Entry, Trigger::Entry | Trigger::Visit { .. }) => true,
            (Trigger::Visit { number: a }, Trigger::Visit { number: b }) => a == b,
            _ => false,
        };
        if !trigger_ok {
            return false;
        }
        if !s.stores.is_empty() && !s.stores.iter().any(|x| x == store) {
            return false;
        }
        if !s.zones.is_empty() && !zone.is_some_and(|z| s.zones.iter().any(|x| x == z)) {
            return false;
        }
        let ms = local.timestamp().as_millisecond();
        if s.schedule.start_ms.is_some_and(|a| ms < a) || s.schedule.end_ms.is_some_and(|b| ms >= b)
        {
            return false;
        }
        if !self.days.is_empty() && !self.days.contains(&local.weekday()) {
            return false;
        }
        let t = local.time();
        if let Some((a, b)) = self.hours
            && !in_window(t, a, b)
        {
            return false;
        }
        if let Some((a, b)) = self.quiet
            && in_window(t, a, b)
        {
            return false;
        }
        true
    }

    /// Whether a shopper with these tags and loyalty class is in the audience.
    pub fn audience_matches(&self, tags: &[String], loyalty: &str) -> bool {
        let a = &self.spec.audience;
        if !a.tags.iter().all(|t| tags.contains(t)) {
            return false;
        }
        if !a.loyalty.is_empty() && !a.loyalty.iter().any(|l| l == loyalty) {
            return false;
        }
        match &self.segment {
            Some(e) => e.matches(|t: &str| tags.iter().any(|x| x == t)),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CampaignSpec {
        serde_json::from_str(
            r#"{"id":"lipstick-120","name":"Lipstick","stores":["s1"],"zones":["cosmetics"],
                "trigger":{"kind":"dwell","seconds":120},
                "schedule":{"days":["mon","tue","wed","thu","fri","sat"],"from":"09:00","to":"21:00"},
                "quiet_hours":{"from":"12:00","to":"13:00"},
                "audience":{"segment":"cosmetics-lover & !staff"},
                "offer":{"title":"20% off","expires_after_s":7200},
                "cap":{"per_shopper":1,"window_s":86400},"budget":500,"holdout_permille":100}"#,
        )
        .unwrap()
    }

    fn at(s: &str) -> jiff::Zoned {
        // Local time in Shanghai: 2026-11-24 is a Tuesday.
        format!("{s}[Asia/Shanghai]").parse().unwrap()
    }

    #[test]
    fn fits_place_trigger_days_hours_and_quiet_hours() {
        let c = Campaign::new(spec()).unwrap();
        let d = |s| Trigger::Dwell { seconds: s };
        assert!(c.fits(&d(120), "s1", Some("cosmetics"), &at("2026-11-24T10:00")));
        assert!(!c.fits(&d(60), "s1", Some("cosmetics"), &at("2026-11-24T10:00")));
        assert!(!c.fits(&d(120), "s2", Some("cosmetics"), &at("2026-11-24T10:00")));
        assert!(!c.fits(&d(120), "s1", Some("toys"), &at("2026-11-24T10:00")));
        assert!(!c.fits(&d(120), "s1", None, &at("2026-11-24T10:00")));
        assert!(!c.fits(&d(120), "s1", Some("cosmetics"), &at("2026-11-24T08:59")));
        assert!(!c.fits(&d(120), "s1", Some("cosmetics"), &at("2026-11-24T21:00")));
        assert!(
            !c.fits(&d(120), "s1", Some("cosmetics"), &at("2026-11-24T12:30")),
            "quiet"
        );
        assert!(c.fits(&d(120), "s1", Some("cosmetics"), &at("2026-11-24T13:00")));
        assert!(
            !c.fits(&d(120), "s1", Some("cosmetics"), &at("2026-11-29T10:00")),
            "Sunday"
        );
    }

    #[test]
    fn windows_wrap_past_midnight() {
        let a = parse_hhmm("22:00").unwrap();
        let b = parse_hhmm("06:00").unwrap();
        assert!(in_window(parse_hhmm("23:30").unwrap(), a, b));
        assert!(in_window(parse_hhmm("05:59").unwrap(), a, b));
        assert!(!in_window(parse_hhmm("06:00").unwrap(), a, b));
        assert!(!in_window(parse_hhmm("12:00").unwrap(), a, b));
    }

    #[test]
    fn audience_by_segment_tags_and_loyalty() {
        let c = Campaign::new(spec()).unwrap();
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(c.spec.audience.is_personalised());
        assert!(c.audience_matches(&tags(&["cosmetics-lover"]), "weekly"));
        assert!(!c.audience_matches(&tags(&["cosmetics-lover", "staff"]), "weekly"));
        assert!(!c.audience_matches(&tags(&[]), "weekly"));
        let mut s = spec();
        s.audience = Audience {
            loyalty: vec!["daily".into()],
            ..Audience::default()
        };
        let c = Campaign::new(s).unwrap();
        assert!(c.audience_matches(&[], "daily"));
        assert!(!c.audience_matches(&[], "first_time"));
    }

    #[test]
    fn bad_specs_say_what_to_fix() {
        let mut s = spec();
        s.schedule.days = vec!["funday".into()];
        assert!(
            Campaign::new(s)
                .unwrap_err()
                .to_string()
                .contains("schedule.days")
        );
        let mut s = spec();
        s.audience.segment = Some("a & (".into());
        assert!(
            Campaign::new(s)
                .unwrap_err()
                .to_string()
                .contains("audience.segment")
        );
        let mut s = spec();
        s.holdout_permille = 900;
        assert!(Campaign::new(s).is_err());
        let mut s = spec();
        s.id = "has space".into();
        assert!(Campaign::new(s).is_err());
        assert!(
            serde_json::from_str::<CampaignSpec>(r#"{"id":"x","name":"x","trigger":{"kind":"dwell","seconds":5},"offer":{"title":"t","expires_after_s":1},"colour":"red"}"#).is_err(),
            "unknown fields are refused"
        );
    }
}
