//! A place in the ordered log.

use std::fmt;
use std::str::FromStr;

/// A position in the feed order `(transaction_id, global_position)`.
///
/// The feed orders events by the id of the transaction that wrote them, then by their global
/// position; a subscriber that has reached a position has applied every event at or before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeedPosition {
    /// The `xid8` of the appending transaction.
    pub transaction_id: u64,
    /// The event's `global_position`.
    pub global_position: i64,
}

impl FeedPosition {
    /// The position before the first event.
    pub const START: FeedPosition = FeedPosition {
        transaction_id: 0,
        global_position: 0,
    };

    /// Builds a position from the text form of an `xid8` (sqlx 0.8 has no xid8 type) and a position.
    pub fn from_db(transaction_id: &str, global_position: i64) -> Result<Self, InvalidPosition> {
        let transaction_id = transaction_id.parse().map_err(|_| InvalidPosition)?;
        Ok(Self {
            transaction_id,
            global_position,
        })
    }
}

/// Text form `"<transaction_id>.<global_position>"`, used as the opaque audit cursor.
impl fmt::Display for FeedPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.transaction_id, self.global_position)
    }
}

/// A cursor or database value that is not a feed position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a feed position")]
pub struct InvalidPosition;

impl FromStr for FeedPosition {
    type Err = InvalidPosition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s.split_once('.').ok_or(InvalidPosition)?;
        let transaction_id = tx.parse().map_err(|_| InvalidPosition)?;
        let global_position: i64 = pos.parse().map_err(|_| InvalidPosition)?;
        if global_position < 0 {
            return Err(InvalidPosition);
        }
        Ok(Self {
            transaction_id,
            global_position,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn positions_order_by_transaction_first_then_global_position() {
        let late_commit_low_position = FeedPosition {
            transaction_id: 9,
            global_position: 1,
        };
        let early_commit_high_position = FeedPosition {
            transaction_id: 8,
            global_position: 2,
        };
        assert!(early_commit_high_position < late_commit_low_position);
    }

    #[test]
    fn the_text_form_round_trips_and_garbage_is_refused() {
        let p = FeedPosition {
            transaction_id: 771,
            global_position: 42,
        };
        assert_eq!(p.to_string().parse::<FeedPosition>().unwrap(), p);
        assert!("abc".parse::<FeedPosition>().is_err());
        assert!("1.-5".parse::<FeedPosition>().is_err());
        assert!("1".parse::<FeedPosition>().is_err());
    }
}
