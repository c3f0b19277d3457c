//! R15: the period a request list covers when the caller names none.

use crate::{Millis, MILLIS_PER_DAY};

/// How far back a request list reaches by default.
pub const DEFAULT_LIST_WINDOW: Millis = 30 * MILLIS_PER_DAY;

/// The start of the listed period: `since` when the caller gave it, else 30 days before `now`.
pub fn listed_since(since: Option<Millis>, now: Millis) -> Millis {
    since.unwrap_or(now - DEFAULT_LIST_WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r15_lists_show_the_last_30_days_unless_told_otherwise() {
        let now = 100 * MILLIS_PER_DAY;
        assert_eq!(listed_since(None, now), 70 * MILLIS_PER_DAY);
        assert_eq!(listed_since(Some(MILLIS_PER_DAY), now), MILLIS_PER_DAY, "an older period when asked");
    }
}
