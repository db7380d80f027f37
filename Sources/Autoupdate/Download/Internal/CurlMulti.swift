import CAutoupdateCurl

/// Owns one libcurl multi handle that drives a single easy handle on the transfer thread.
///
/// The multi interface (rather than `curl_easy_perform`) is what lets another thread interrupt
/// a transfer at once: `curl_multi_poll` returns as soon as `curl_multi_wakeup` is called, so a
/// cancelled download stops within milliseconds even while the server is silent.
///
/// The corresponding C type is `CURLM *`.
final class CurlMulti {
    private let handle: UnsafeMutableRawPointer
    private let wakeup: CurlWakeup

    init(wakeup: CurlWakeup) throws {
        CurlGlobal.ensureInitialized()
        guard let handle = curl_multi_init() else {
            throw AutoupdateError(.network, "libcurl could not create a multi handle (out of memory?)")
        }
        self.handle = handle
        self.wakeup = wakeup
        wakeup.register(handle)
    }

    deinit {
        // Unregister first: after this no other thread can call `curl_multi_wakeup` on the handle.
        wakeup.unregister()
        curl_multi_cleanup(handle)
    }

    func add(_ easy: CurlEasy) throws {
        let code = curl_multi_add_handle(handle, easy.handle)
        guard code == CURLM_OK else {
            throw AutoupdateError(.network, "libcurl could not start a transfer: \(String(cString: curl_multi_strerror(code)))")
        }
    }

    func remove(_ easy: CurlEasy) {
        _ = curl_multi_remove_handle(handle, easy.handle)
    }

    /// Runs whatever is ready without blocking; returns whether the transfer is still running.
    func perform() -> Bool {
        var running: Int32 = 0
        _ = curl_multi_perform(handle, &running)
        return running > 0
    }

    /// Waits until a socket is ready, `timeoutMilliseconds` pass, or another thread calls
    /// ``CurlWakeup/wake()``.
    func poll(timeoutMilliseconds: Int32) {
        _ = curl_multi_poll(handle, nil, 0, timeoutMilliseconds, nil)
    }

    /// The result of the finished transfer, or `nil` if it has not finished.
    func completionCode() -> CurlCode? {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(handle, &remaining) {
            if message.pointee.msg == CURLMSG_DONE {
                return CurlCode(message.pointee.data.result)
            }
        }
        return nil
    }
}

@available(*, unavailable)
extension CurlMulti: Sendable {}

/// Lets any thread interrupt the transfer thread's `curl_multi_poll`.
///
/// `curl_multi_wakeup` is thread-safe, but the handle must not be freed while it runs: both
/// happen under one lock, so a wake-up after cleanup is a no-op rather than a use-after-free.
final class CurlWakeup: Sendable {
    // Safe: the pointer is used only inside `curl_multi_wakeup` (thread-safe) and only under this
    // lock, which the owning thread also takes before `curl_multi_cleanup`.
    private struct MultiPointer: @unchecked Sendable {
        let raw: UnsafeMutableRawPointer
    }

    private let handle = Locked<MultiPointer?>(nil)

    func wake() {
        handle.withLock { pointer in
            if let pointer {
                _ = curl_multi_wakeup(pointer.raw)
            }
        }
    }

    fileprivate func register(_ pointer: UnsafeMutableRawPointer) {
        let pointer = MultiPointer(raw: pointer)
        handle.withLock { $0 = pointer }
    }

    fileprivate func unregister() {
        handle.withLock { $0 = nil }
    }
}
