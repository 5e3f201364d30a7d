//! The v1 MQTT topic names: builders, subscription filters, and the parser.
//!
//! Topic names are an interface other people's tools subscribe to, so they are made in this one
//! module and nowhere else (no string literals scattered around the edge and cloud). Every id that
//! goes into a topic is checked by [`validate_id`], because an id containing `/`, `+` or `#` would
//! silently publish to, or subscribe to, someone else's topic. The store id `shoppers` is reserved:
//! `dwell/v1/shoppers/{shopper}/coupons` would otherwise also read as a store's topic.
//!
//! Parsing and formatting are `no_std` and allocation-free ([`Topic`] borrows its ids and
//! implements `Display`, so the firmware can write a topic into a fixed buffer); the builders that
//! return a `String` need `alloc`.
//!
//! | topic | direction |
//! |---|---|
//! | `dwell/v1/{store}/{gateway}/events` | edge → cloud, QoS 1 |
//! | `dwell/v1/{store}/{gateway}/status` | edge → cloud, retained, last will |
//! | `dwell/v1/{store}/config` | cloud → edge, retained |
//! | `dwell/v1/shoppers/{shopper}/coupons` | cloud → shopper app, QoS 1 |
//! | `dwell/v1/{store}/nodes/{node}/report` | zone node → gateway |

use core::fmt;

/// The first two levels of every v1 topic.
pub const PREFIX: &str = "dwell/v1";

/// Longest id accepted in a topic level, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// The level under which shopper topics live; reserved, so it can't be a store id.
pub const SHOPPERS: &str = "shoppers";

/// Subscription filter: every gateway's events in every store.
pub const ALL_EVENTS: &str = "dwell/v1/+/+/events";

/// Subscription filter: every gateway's status in every store.
pub const ALL_STATUSES: &str = "dwell/v1/+/+/status";

/// A parsed (or to-be-formatted) v1 topic, borrowing its ids.
///
/// Build one with the checked constructors ([`Topic::events`] …) or [`parse`]; `Display` writes the
/// topic string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic<'a> {
    /// `dwell/v1/{store}/{gateway}/events`
    Events { store: &'a str, gateway: &'a str },
    /// `dwell/v1/{store}/{gateway}/status`
    Status { store: &'a str, gateway: &'a str },
    /// `dwell/v1/{store}/config`
    StoreConfig { store: &'a str },
    /// `dwell/v1/shoppers/{shopper}/coupons`
    ShopperCoupons { shopper: &'a str },
    /// `dwell/v1/{store}/nodes/{node}/report`
    NodeReport { store: &'a str, node: &'a str },
}

impl<'a> Topic<'a> {
    pub fn events(store: &'a str, gateway: &'a str) -> Result<Self, TopicError> {
        check(IdKind::Store, store)?;
        check(IdKind::Gateway, gateway)?;
        Ok(Topic::Events { store, gateway })
    }

    pub fn status(store: &'a str, gateway: &'a str) -> Result<Self, TopicError> {
        check(IdKind::Store, store)?;
        check(IdKind::Gateway, gateway)?;
        Ok(Topic::Status { store, gateway })
    }

    pub fn store_config(store: &'a str) -> Result<Self, TopicError> {
        check(IdKind::Store, store)?;
        Ok(Topic::StoreConfig { store })
    }

    pub fn shopper_coupons(shopper: &'a str) -> Result<Self, TopicError> {
        check(IdKind::Shopper, shopper)?;
        Ok(Topic::ShopperCoupons { shopper })
    }

    pub fn node_report(store: &'a str, node: &'a str) -> Result<Self, TopicError> {
        check(IdKind::Store, store)?;
        check(IdKind::Node, node)?;
        Ok(Topic::NodeReport { store, node })
    }

    /// The store this topic belongs to (`None` for shopper topics).
    pub fn store(&self) -> Option<&'a str> {
        match *self {
            Topic::Events { store, .. }
            | Topic::Status { store, .. }
            | Topic::StoreConfig { store }
            | Topic::NodeReport { store, .. } => Some(store),
            Topic::ShopperCoupons { .. } => None,
        }
    }

    /// The gateway this topic belongs to (events and status only).
    pub fn gateway(&self) -> Option<&'a str> {
        match *self {
            Topic::Events { gateway, .. } | Topic::Status { gateway, .. } => Some(gateway),
            _ => None,
        }
    }
}

impl fmt::Display for Topic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Events { store, gateway } => write!(f, "{PREFIX}/{store}/{gateway}/events"),
            Topic::Status { store, gateway } => write!(f, "{PREFIX}/{store}/{gateway}/status"),
            Topic::StoreConfig { store } => write!(f, "{PREFIX}/{store}/config"),
            Topic::ShopperCoupons { shopper } => write!(f, "{PREFIX}/{SHOPPERS}/{shopper}/coupons"),
            Topic::NodeReport { store, node } => write!(f, "{PREFIX}/{store}/nodes/{node}/report"),
        }
    }
}

/// Most levels any v1 topic has (`dwell/v1/{store}/nodes/{node}/report`).
const MAX_LEVELS: usize = 6;

/// Parses a concrete topic name (as received from the broker) into a [`Topic`].
///
/// Every id is checked with [`validate_id`], so a parsed topic can be formatted back unchanged.
pub fn parse(topic: &str) -> Result<Topic<'_>, TopicError> {
    let mut levels = [""; MAX_LEVELS];
    let mut n = 0;
    for level in topic.split('/') {
        *levels.get_mut(n).ok_or(TopicError::UnknownShape)? = level;
        n += 1;
    }
    let levels = &levels[..n];
    match levels {
        ["dwell", "v1", rest @ ..] => match *rest {
            [SHOPPERS, shopper, "coupons"] => Topic::shopper_coupons(shopper),
            [store, gateway, "events"] => Topic::events(store, gateway),
            [store, gateway, "status"] => Topic::status(store, gateway),
            [store, "config"] => Topic::store_config(store),
            [store, "nodes", node, "report"] => Topic::node_report(store, node),
            _ => Err(TopicError::UnknownShape),
        },
        ["dwell", _, ..] => Err(TopicError::UnsupportedVersion),
        _ => Err(TopicError::NotDwell),
    }
}

/// Checks one topic level id: non-empty, at most [`MAX_ID_LEN`] bytes, and free of `/`, `+`, `#`,
/// NUL, other control characters and whitespace (all either break MQTT topic matching or make ids
/// that differ invisibly).
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { len: id.len() });
    }
    match id
        .char_indices()
        .find(|&(_, c)| matches!(c, '/' | '+' | '#') || c.is_control() || c.is_whitespace())
    {
        Some((at, ch)) => Err(IdError::ForbiddenChar { at, ch }),
        None => Ok(()),
    }
}

fn check(kind: IdKind, id: &str) -> Result<(), TopicError> {
    let reserved = kind == IdKind::Store && id == SHOPPERS;
    validate_id(id)
        .and(if reserved {
            Err(IdError::Reserved)
        } else {
            Ok(())
        })
        .map_err(|error| TopicError::InvalidId { kind, error })
}

/// Which id of a topic was bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdKind {
    Store,
    Gateway,
    Shopper,
    Node,
    /// The shared-subscription group name.
    Group,
}

impl IdKind {
    pub const fn label(self) -> &'static str {
        match self {
            IdKind::Store => "store",
            IdKind::Gateway => "gateway",
            IdKind::Shopper => "shopper",
            IdKind::Node => "node",
            IdKind::Group => "group",
        }
    }
}

/// Why an id can't be used in a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdError {
    Empty,
    /// Longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        len: usize,
    },
    /// A forbidden character at byte offset `at`.
    ForbiddenChar {
        at: usize,
        ch: char,
    },
    /// A reserved word in that position (`shoppers` as a store id).
    Reserved,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IdError::Empty => f.write_str("id is empty"),
            IdError::TooLong { len } => {
                write!(f, "id is {len} bytes, at most {MAX_ID_LEN} allowed")
            }
            IdError::ForbiddenChar { at, ch } => {
                write!(
                    f,
                    "id contains {ch:?} at byte {at} (no '/', '+', '#', control characters or whitespace)"
                )
            }
            IdError::Reserved => f.write_str("id is reserved"),
        }
    }
}

impl core::error::Error for IdError {}

/// Why a topic could not be built or parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicError {
    /// The topic is not under `dwell/`.
    NotDwell,
    /// A `dwell/` topic of a version other than v1.
    UnsupportedVersion,
    /// A `dwell/v1/` topic that matches none of the v1 shapes.
    UnknownShape,
    /// An id is unusable in a topic.
    InvalidId { kind: IdKind, error: IdError },
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::NotDwell => f.write_str("not a dwell topic (expected dwell/v1/...)"),
            TopicError::UnsupportedVersion => {
                f.write_str("unsupported dwell topic version (this build speaks dwell/v1)")
            }
            TopicError::UnknownShape => f.write_str("not a known dwell/v1 topic"),
            TopicError::InvalidId { kind, error } => write!(f, "bad {} id: {error}", kind.label()),
        }
    }
}

impl core::error::Error for TopicError {}

#[cfg(feature = "alloc")]
pub use builders::*;

#[cfg(feature = "alloc")]
mod builders {
    use super::*;
    use alloc::format;
    use alloc::string::{String, ToString};

    /// `dwell/v1/{store}/{gateway}/events`
    pub fn events(store: &str, gateway: &str) -> Result<String, TopicError> {
        Ok(Topic::events(store, gateway)?.to_string())
    }

    /// `dwell/v1/{store}/{gateway}/status`
    pub fn status(store: &str, gateway: &str) -> Result<String, TopicError> {
        Ok(Topic::status(store, gateway)?.to_string())
    }

    /// `dwell/v1/{store}/config`
    pub fn store_config(store: &str) -> Result<String, TopicError> {
        Ok(Topic::store_config(store)?.to_string())
    }

    /// `dwell/v1/shoppers/{shopper}/coupons`
    pub fn shopper_coupons(shopper: &str) -> Result<String, TopicError> {
        Ok(Topic::shopper_coupons(shopper)?.to_string())
    }

    /// `dwell/v1/{store}/nodes/{node}/report`
    pub fn node_report(store: &str, node: &str) -> Result<String, TopicError> {
        Ok(Topic::node_report(store, node)?.to_string())
    }

    /// Shared-subscription filter `$share/{group}/dwell/v1/+/+/events`: the broker spreads all
    /// gateways' events over the cloud workers subscribed with the same group.
    pub fn shared_events(group: &str) -> Result<String, TopicError> {
        check(IdKind::Group, group)?;
        Ok(format!("$share/{group}/{ALL_EVENTS}"))
    }

    /// Subscription filter `dwell/v1/{store}/nodes/+/report`: every zone node of one store.
    pub fn store_node_reports(store: &str) -> Result<String, TopicError> {
        check(IdKind::Store, store)?;
        Ok(format!("{PREFIX}/{store}/nodes/+/report"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(kind: IdKind, error: IdError) -> TopicError {
        TopicError::InvalidId { kind, error }
    }

    #[test]
    fn parses_every_shape() {
        assert_eq!(
            parse("dwell/v1/store-001/gw-1/events"),
            Ok(Topic::Events {
                store: "store-001",
                gateway: "gw-1"
            })
        );
        assert_eq!(
            parse("dwell/v1/store-001/gw-1/status"),
            Ok(Topic::Status {
                store: "store-001",
                gateway: "gw-1"
            })
        );
        assert_eq!(
            parse("dwell/v1/store-001/config"),
            Ok(Topic::StoreConfig { store: "store-001" })
        );
        assert_eq!(
            parse("dwell/v1/shoppers/s-42/coupons"),
            Ok(Topic::ShopperCoupons { shopper: "s-42" })
        );
        assert_eq!(
            parse("dwell/v1/store-001/nodes/n7/report"),
            Ok(Topic::NodeReport {
                store: "store-001",
                node: "n7"
            })
        );
        // "nodes" is an ordinary gateway id: the node report has one more level.
        assert_eq!(
            parse("dwell/v1/s/nodes/events"),
            Ok(Topic::Events {
                store: "s",
                gateway: "nodes"
            })
        );
    }

    #[test]
    fn rejects_bad_topics() {
        assert_eq!(parse(""), Err(TopicError::NotDwell));
        assert_eq!(parse("other/v1/s/g/events"), Err(TopicError::NotDwell));
        assert_eq!(
            parse("dwell/v2/s/g/events"),
            Err(TopicError::UnsupportedVersion)
        );
        assert_eq!(parse("dwell/v1/s/g/unknown"), Err(TopicError::UnknownShape));
        assert_eq!(
            parse("dwell/v1/s/g/events/extra"),
            Err(TopicError::UnknownShape)
        );
        assert_eq!(
            parse("dwell/v1/a/b/c/d/e/f/g"),
            Err(TopicError::UnknownShape)
        );
        assert_eq!(parse("dwell/v1"), Err(TopicError::UnknownShape));
        assert_eq!(
            parse("dwell/v1//g/events"),
            Err(invalid(IdKind::Store, IdError::Empty))
        );
        assert_eq!(
            parse("dwell/v1/+/+/events"),
            Err(invalid(
                IdKind::Store,
                IdError::ForbiddenChar { at: 0, ch: '+' }
            ))
        );
        assert_eq!(
            parse("dwell/v1/shoppers/g/events"),
            Err(invalid(IdKind::Store, IdError::Reserved))
        );
        assert_eq!(
            parse("dwell/v1/shoppers/config"),
            Err(invalid(IdKind::Store, IdError::Reserved))
        );
        assert_eq!(
            parse("dwell/v1/s/nodes/n#/report"),
            Err(invalid(
                IdKind::Node,
                IdError::ForbiddenChar { at: 1, ch: '#' }
            ))
        );
    }

    /// `MAX_ID_LEN + 1` bytes (`str::repeat` would need alloc; these tests run no_std too).
    const LONG: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

    #[test]
    fn validates_ids() {
        assert_eq!(LONG.len(), MAX_ID_LEN + 1);
        assert_eq!(validate_id("store-001"), Ok(()));
        assert_eq!(validate_id("eid:0123456789abcdef"), Ok(()));
        assert_eq!(validate_id(&LONG[..MAX_ID_LEN]), Ok(()));
        assert_eq!(validate_id(""), Err(IdError::Empty));
        assert_eq!(
            validate_id(LONG),
            Err(IdError::TooLong {
                len: MAX_ID_LEN + 1
            })
        );
        for (id, at, ch) in [
            ("a/b", 1, '/'),
            ("a+", 1, '+'),
            ("#", 0, '#'),
            ("a\0", 1, '\0'),
            ("a b", 1, ' '),
            ("a\tb", 1, '\t'),
            ("é\u{a0}", 2, '\u{a0}'),
        ] {
            assert_eq!(
                validate_id(id),
                Err(IdError::ForbiddenChar { at, ch }),
                "{id:?}"
            );
        }
        // "shoppers" is only reserved as a store.
        assert_eq!(Topic::shopper_coupons("shoppers").map(|_| ()), Ok(()));
        assert_eq!(Topic::events("s", "shoppers").map(|_| ()), Ok(()));
    }

    #[cfg(feature = "alloc")]
    mod builders {
        use super::super::*;
        use super::invalid;
        use alloc::string::ToString;

        #[test]
        fn builds_and_round_trips() {
            let cases = [
                (
                    events("store-001", "gw-1"),
                    "dwell/v1/store-001/gw-1/events",
                ),
                (
                    status("store-001", "gw-1"),
                    "dwell/v1/store-001/gw-1/status",
                ),
                (store_config("store-001"), "dwell/v1/store-001/config"),
                (shopper_coupons("s-42"), "dwell/v1/shoppers/s-42/coupons"),
                (
                    node_report("store-001", "n7"),
                    "dwell/v1/store-001/nodes/n7/report",
                ),
            ];
            for (built, want) in cases {
                let built = built.unwrap();
                assert_eq!(built, want);
                assert_eq!(parse(&built).unwrap().to_string(), want);
            }
        }

        #[test]
        fn filters() {
            assert_eq!(ALL_EVENTS, "dwell/v1/+/+/events");
            assert_eq!(ALL_STATUSES, "dwell/v1/+/+/status");
            assert_eq!(
                shared_events("cloud").unwrap(),
                "$share/cloud/dwell/v1/+/+/events"
            );
            assert_eq!(
                store_node_reports("store-001").unwrap(),
                "dwell/v1/store-001/nodes/+/report"
            );
            assert_eq!(
                shared_events("a/b"),
                Err(invalid(
                    IdKind::Group,
                    IdError::ForbiddenChar { at: 1, ch: '/' }
                ))
            );
            assert_eq!(
                store_node_reports("shoppers"),
                Err(invalid(IdKind::Store, IdError::Reserved))
            );
        }

        #[test]
        fn builders_reject_bad_ids() {
            assert_eq!(
                events("shoppers", "gw"),
                Err(invalid(IdKind::Store, IdError::Reserved))
            );
            assert_eq!(
                events("s", ""),
                Err(invalid(IdKind::Gateway, IdError::Empty))
            );
            assert_eq!(
                shopper_coupons("a b"),
                Err(invalid(
                    IdKind::Shopper,
                    IdError::ForbiddenChar { at: 1, ch: ' ' }
                ))
            );
            assert_eq!(
                node_report("s", "n+"),
                Err(invalid(
                    IdKind::Node,
                    IdError::ForbiddenChar { at: 1, ch: '+' }
                ))
            );
            assert_eq!(
                store_config("s#").unwrap_err().to_string(),
                "bad store id: id contains '#' at byte 1 (no '/', '+', '#', control characters or whitespace)"
            );
        }
    }
}
