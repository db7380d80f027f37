import Foundation
public import Testing

extension Trait where Self == ConditionTrait {
    /// Marks a test that runs a product under a file-size limit (`ulimit -f`): skipped when the
    /// products are built with ThreadSanitizer (`make tsan` sets `AUTOUPDATE_SANITIZER=thread`),
    /// whose runtime dies of SIGBUS before `main` under such a limit.
    public static var setsFileSizeLimit: Self {
        .disabled(
            if: ProcessInfo.processInfo.environment["AUTOUPDATE_SANITIZER"] == "thread",
            "ThreadSanitizer's runtime cannot start under a file-size limit: SIGBUS before main")
    }
}
