//! [`KeyCache`]: the data keys a [`super::KmsKeyring`] unwrapped lately,
//! so that one Lambda instance asks KMS `Decrypt` once per execution and
//! a few minutes, not once per action.
//!
//! An entry is found by the root execution id *and* the wrapped key's
//! bytes: KMS unwrapped it under that execution's encryption context, so a
//! wrapped key copied into another execution's record misses here and goes
//! to KMS, which refuses it.
//!
//! Bounded in time (an entry expires `ttl` after it was unwrapped, so a
//! KMS key that was disabled stops working here soon after) and in size
//! (at `capacity`, expired entries go first, then the oldest). A dropped
//! entry's sealer zeroes its key once no action still holds it (the AES
//! key schedule and GHASH key are zeroed on drop, see `Cargo.toml`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::{Sealer, WrappedKey};

/// Which entry: the root execution and the wrapped key's ciphertext.
type CacheKey = (String, Vec<u8>);

struct Entry {
    sealer: Arc<dyn Sealer>,
    unwrapped_at: Instant,
}

/// A bounded, expiring map from (root execution, wrapped key) to the
/// sealer of the unwrapped data key.
pub(crate) struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<CacheKey, Entry>>,
}

impl KeyCache {
    /// A cache keeping at most `capacity` keys, each for `ttl`.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        KeyCache {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The sealer of `wrapped` as unwrapped for `root_execution_id`, unless
    /// it expired (an expired entry is removed).
    pub(crate) fn get(
        &self,
        root_execution_id: &str,
        wrapped: &WrappedKey,
    ) -> Option<Arc<dyn Sealer>> {
        let key = (root_execution_id.to_owned(), wrapped.ciphertext.clone());
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(entry) if entry.unwrapped_at.elapsed() < self.ttl => Some(entry.sealer.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remember the sealer KMS just unwrapped for `root_execution_id`.
    pub(crate) fn insert(
        &self,
        root_execution_id: &str,
        wrapped: &WrappedKey,
        sealer: Arc<dyn Sealer>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let key = (root_execution_id.to_owned(), wrapped.ciphertext.clone());
        let mut entries = self.lock();
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            entries.retain(|_, entry| entry.unwrapped_at.elapsed() < self.ttl);
            while entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.unwrapped_at)
                    .map(|(key, _)| key.clone());
                match oldest {
                    Some(oldest) => entries.remove(&oldest),
                    None => break,
                };
            }
        }
        entries.insert(
            key,
            Entry {
                sealer,
                unwrapped_at: Instant::now(),
            },
        );
    }

    /// How many keys are held (expired ones included until touched).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CacheKey, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::LocalKeySealer;

    fn wrapped(byte: u8) -> WrappedKey {
        WrappedKey {
            kms_key_id: "arn:aws:kms:us-east-1:1:key/k".into(),
            ciphertext: vec![byte; 16],
        }
    }

    fn sealer(byte: u8) -> Arc<dyn Sealer> {
        Arc::new(LocalKeySealer::from_keys(&[byte; 32], &[]))
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_unwrapped_for_an_execution_is_found_again_for_it() {
        let cache = KeyCache::new(Duration::from_secs(300), 4);
        let key = sealer(1);
        cache.insert("root-1", &wrapped(1), key.clone());
        let hit = cache.get("root-1", &wrapped(1)).expect("a hit");
        assert!(Arc::ptr_eq(&hit, &key));
        assert!(cache.get("root-1", &wrapped(2)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_wrapped_key_for_another_root_execution_is_a_miss() {
        // KMS unwrapped it for root-1 only: root-2 must ask KMS (which
        // refuses, the encryption context names root-1).
        let cache = KeyCache::new(Duration::from_secs(300), 4);
        cache.insert("root-1", &wrapped(1), sealer(1));
        assert!(cache.get("root-2", &wrapped(1)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_expires_after_the_ttl() {
        let cache = KeyCache::new(Duration::from_secs(300), 4);
        cache.insert("root-1", &wrapped(1), sealer(1));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(cache.get("root-1", &wrapped(1)).is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(cache.get("root-1", &wrapped(1)).is_none());
        assert_eq!(cache.len(), 0, "the expired entry is dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn at_capacity_expired_keys_go_first_then_the_oldest() {
        let cache = KeyCache::new(Duration::from_secs(300), 2);
        cache.insert("root-1", &wrapped(1), sealer(1));
        tokio::time::advance(Duration::from_secs(10)).await;
        cache.insert("root-2", &wrapped(2), sealer(2));
        tokio::time::advance(Duration::from_secs(10)).await;
        // Full: the oldest (root-1) makes room.
        cache.insert("root-3", &wrapped(3), sealer(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("root-1", &wrapped(1)).is_none());
        assert!(cache.get("root-2", &wrapped(2)).is_some());
        assert!(cache.get("root-3", &wrapped(3)).is_some());
        // Both expire; the next key clears them all, not just one.
        tokio::time::advance(Duration::from_secs(300)).await;
        cache.insert("root-4", &wrapped(4), sealer(4));
        assert_eq!(cache.len(), 1);
        assert!(cache.get("root-4", &wrapped(4)).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_capacity_cache_holds_nothing() {
        let cache = KeyCache::new(Duration::from_secs(300), 0);
        cache.insert("root-1", &wrapped(1), sealer(1));
        assert!(cache.get("root-1", &wrapped(1)).is_none());
    }
}
