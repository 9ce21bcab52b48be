// Package lock is the deploy lock of one environment and service, kept on
// the fleet itself so that every deployer — laptops and CI runners alike —
// sees the same lock. A lock is a directory created atomically (mkdir) on
// one machine of the environment, holding a small JSON record of who holds
// it, since when, for which target and why. The rules (refuse with the
// holder's details, wait for a bounded time, break a lock older than its
// TTL only when forced, release only one's own lock) live here and are
// tested on an in-memory store; the store that runs shell commands over
// SSH is in this package too, behind the Store interface.
package lock
