//! R12: fields that are sets (group ids, permissions, members) are read and written sorted and
//! without duplicates, whatever order a client or a row gave them in. The diff compares arrays
//! by position, so a set stored in arrival order would show reorders that change nothing.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;

pub fn serialize<T: Ord + Serialize, S: Serializer>(items: &[T], serializer: S) -> Result<S::Ok, S::Error> {
    items.iter().collect::<BTreeSet<&T>>().serialize(serializer)
}

pub fn deserialize<'de, T: Ord + Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Ok(BTreeSet::<T>::deserialize(deserializer)?.into_iter().collect())
}
