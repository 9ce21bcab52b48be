// Package lock is the deploy lock of one environment and service, kept on
// the fleet itself so that every deployer — laptops and CI runners alike —
// sees the same lock.
//
// A lock is a lease. Its holder renews it every few seconds while it runs
// (Locker.KeepAlive); a lock not renewed within its TTL has expired and the
// next deployer takes it over, as it does at once a lock whose holder ran on
// its own machine and whose process is gone. Ages are measured by the lock
// machine's clock only: the record's times are stamped there and its age is
// computed there. A holder that cannot renew in time, or finds its lock
// taken, is told so (Lease.Lost) and stops. Every acquisition has its own
// run ID; renewals, takeovers and releases compare it (compare-and-swap),
// so two deployers never both hold a lock and jobs sharing a user@host
// identity never release each other's. A lock taken by hand is Manual: not
// renewed, with its own long TTL.
//
// The rules (refuse with the holder's details, wait for a bounded time,
// take over when expired or dead, force only over a hand-held lock) live in
// Locker and are tested on an in-memory store with its own clock; DirStore
// keeps locks as directories on the lock machine, reached over SSH, every
// change made by one flock-guarded shell script.
package lock
