import Glibc

/// SHA-256 on a thread of its own, fed copies of what is written: a layer's tar is produced and
/// written on one core while it is hashed on the other, as `tar | sha256sum` does with two
/// processes. At most `depth` chunks wait, so memory stays bounded when hashing falls behind.
final class BackgroundHasher: @unchecked Sendable {
    private static let depth = 4
    private let hasher = SHA256()
    // Heap-allocated: pthread objects must not move.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending: [[UInt8]] = []
    private var spare: [[UInt8]] = []
    private var closed = false
    private var thread = pthread_t()

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
        let context = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, nil, { context in
            let hasher = Unmanaged<BackgroundHasher>.fromOpaque(context!).takeRetainedValue()
            hasher.run()
            return nil
        }, context)
        precondition(created == 0, "pthread_create: \(created)")
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        pthread_mutex_lock(mutex)
        while pending.count >= Self.depth { pthread_cond_wait(changed, mutex) }
        var chunk = spare.popLast() ?? []
        pthread_mutex_unlock(mutex)
        chunk.removeAll(keepingCapacity: true)
        chunk.append(contentsOf: bytes)
        pthread_mutex_lock(mutex)
        pending.append(chunk)
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// Waits for every chunk to be hashed; the hasher thread then ends.
    func finish() -> Digest {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        return hasher.finish()
    }

    private func run() {
        while true {
            pthread_mutex_lock(mutex)
            while pending.isEmpty && !closed { pthread_cond_wait(changed, mutex) }
            if pending.isEmpty {
                pthread_mutex_unlock(mutex)
                return
            }
            let chunk = pending.removeFirst()
            pthread_mutex_unlock(mutex)
            chunk.withUnsafeBytes { hasher.update($0) }
            pthread_mutex_lock(mutex)
            spare.append(chunk)
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(mutex)
        }
    }
}
