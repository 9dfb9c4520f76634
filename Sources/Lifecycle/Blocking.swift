import Glibc

/// Waits on this thread for an async operation: the command line stays
/// synchronous, so `stockade exec` never starts the concurrency runtime.
public func runBlocking<T: Sendable>(_ operation: @escaping @Sendable () async -> Result<T, LifecycleError>) throws(LifecycleError) -> T {
    let box = ResultBox<T>()
    Task { box.put(await operation()) }
    return try box.take().get()
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Heap-allocated: pthread objects must not move, and `&property` may hand
    // pthread a temporary copy.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var result: Result<T, LifecycleError>?

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func put(_ value: Result<T, LifecycleError>) {
        pthread_mutex_lock(mutex)
        result = value
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    func take() -> Result<T, LifecycleError> {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while result == nil { pthread_cond_wait(condition, mutex) }
        return result!
    }
}
