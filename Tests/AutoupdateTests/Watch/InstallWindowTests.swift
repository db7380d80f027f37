@testable import Autoupdate
import Testing

@Suite("Install windows (--window)")
struct InstallWindowTests {
    @Test("parsing", arguments: [("02:00-04:30", 120, 270), ("22:00-02:00", 1320, 120), ("00:00-23:59", 0, 1439)])
    func parse(text: String, start: Int, end: Int) throws {
        let window = try InstallWindow(text)
        #expect(window.start == start && window.end == end && window.description == text)
    }

    @Test(
        "not windows",
        arguments: ["", "2:00-4:00", "02:00", "02:00-02:00", "24:00-01:00", "01:60-02:00", "02:00-04:30-05:00", "aa:bb-cc:dd"])
    func refuse(text: String) {
        #expect(throws: AutoupdateError.self) { try InstallWindow(text) }
    }

    @Test(
        "the wait until a window opens, from a local time of day (seconds)",
        arguments: [
            (["02:00-04:30"], 3600, 3600), (["02:00-04:30"], 3 * 3600, 0), (["02:00-04:30"], 4 * 3600 + 30 * 60, 21 * 3600 + 30 * 60),
            (["02:00-04:30"], 7199, 1), (["22:00-02:00"], 23 * 3600, 0), (["22:00-02:00"], 2 * 3600 - 1, 0),
            (["22:00-02:00"], 2 * 3600, 20 * 3600), (["22:00-02:00", "12:00-13:00"], 11 * 3600 + 59 * 60 + 40, 20),
            (["12:00-13:00", "22:00-02:00"], 13 * 3600, 9 * 3600),
        ] as [([String], Int, Int)])
    func wait(windows: [String], secondOfDay: Int, seconds: Int) throws {
        let parsed = try windows.map(InstallWindow.init)
        #expect(InstallWindow.wait(until: parsed, fromSecondOfDay: secondOfDay) == .seconds(seconds))
    }

    @Test("no window: installs at any time")
    func none() {
        #expect(InstallWindow.wait(until: [], fromSecondOfDay: 12_345) == nil)
    }
}
