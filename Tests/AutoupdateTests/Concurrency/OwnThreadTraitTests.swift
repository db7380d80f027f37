import AutoupdateTestTraits
import Foundation
import Testing

/// The test trait that keeps heavy suites off Swift's shared pool (see `.ownThread`).
@Suite("Test support: a thread of its own")
struct OwnThreadTraitTests {
    @Test("the body, across suspensions, and its child tasks run on the test's own thread", .ownThread)
    func ownThread() async {
        let first = pthread_self()
        #expect(ThreadExecutor.isCurrentThread)
        await Task.yield()
        #expect(pthread_equal(pthread_self(), first) != 0)
        let children = await withTaskGroup(of: (pthread_t, Bool).self) { group in
            for _ in 0..<4 { group.addTask { (pthread_self(), ThreadExecutor.isCurrentThread) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(children.count == 4)
        #expect(children.allSatisfy { pthread_equal($0.0, first) != 0 && $0.1 })
    }

    @Test("without the trait, a test runs on the shared pool")
    func sharedPool() async {
        await Task.yield()
        #expect(!ThreadExecutor.isCurrentThread)
    }
}
