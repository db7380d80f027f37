#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// An open file descriptor with one owner: closed when the owner lets go of it, never by hand.
///
/// A class, so that a descriptor handed out of a cache stays open for as long as its user
/// holds it, even when the cache drops it meanwhile.
final class OpenDescriptor {
    let raw: Int32

    /// Takes ownership of `raw`.
    init(taking raw: Int32) {
        self.raw = raw
    }

    deinit {
        close(raw)
    }
}

@available(*, unavailable)
extension OpenDescriptor: Sendable {}

/// The one way the runtime goes into a folder tree it does not trust (an extraction's
/// destination, the app folder, the update folder): from a descriptor of the tree's root, one
/// component at a time, each opened with `O_NOFOLLOW | O_DIRECTORY` relative to the one before.
/// A symlink or a file where a folder is expected fails the walk, whatever is on disk, so
/// nothing can lead an operation outside the tree.
///
/// Walks are cached (bounded: at most `maxCached` folders stay open), since operations on a
/// tree's entries in order mostly stay in a few folders. A caller that moves or removes a folder
/// tells the walker (``forget(under:)``) so that no stale descriptor is reused.
final class PathWalker {
    /// Why a walk failed, for the caller's own message; `path` is relative to the root.
    enum Failure: Error {
        /// A component is a symlink, a file or something else that is not a folder.
        case notAFolder(path: String, errno: Errno)
        case cannotCreate(path: String, errno: Errno)
        case cannotOpen(path: String, errno: Errno)
    }

    let root: OpenDescriptor
    /// The most folders kept open.
    let maxCached: Int
    private var cache: [String: OpenDescriptor] = [:]

    /// How many walked folders are open now (besides the root).
    var cachedCount: Int { cache.count }

    /// Walks from `root`, which the walker now owns, keeping at most `maxCached` folders open.
    init(root: OpenDescriptor, maxCached: Int) {
        self.root = root
        self.maxCached = max(1, maxCached)
    }

    /// The folder at `components` (relative to the root; empty: the root).
    ///
    /// - Parameters:
    ///   - mode: Creates missing folders with this mode, when given.
    ///   - created: Told each folder the walk created, by its relative path.
    func folder(
        _ components: ArraySlice<String>, creatingWith mode: mode_t? = nil, created: (String) -> Void = { _ in }
    ) throws(Failure) -> OpenDescriptor {
        if components.isEmpty {
            return root
        }
        let key = components.joined(separator: "/")
        if let cached = cache[key] {
            return cached
        }
        if cache.count >= maxCached {
            cache.removeAll()
        }
        var current = root
        var path = ""
        for component in components {
            path = path.isEmpty ? component : path + "/" + component
            if let cached = cache[path] {
                current = cached
                continue
            }
            var opened = Syscall.openAt(current.raw, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            if case .failure(.noSuchFileOrDirectory) = opened, let mode {
                switch Syscall.makeDirectoryAt(current.raw, component, mode) {
                case .success: created(path)
                case .failure(.fileExists): break
                case .failure(let errno): throw .cannotCreate(path: path, errno: errno)
                }
                opened = Syscall.openAt(current.raw, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            }
            switch opened {
            case .success(let descriptor):
                current = OpenDescriptor(taking: descriptor)
                cache[path] = current
            case .failure(let errno) where errno == .tooManySymbolicLinkLevels || errno == .notDirectory:
                throw .notAFolder(path: path, errno: errno)
            case .failure(let errno):
                throw .cannotOpen(path: path, errno: errno)
            }
        }
        return current
    }

    /// The folder holding the last of `components`, and that last name.
    func parent(
        of components: [String], creatingWith mode: mode_t? = nil, created: (String) -> Void = { _ in }
    ) throws(Failure) -> (folder: OpenDescriptor, name: String) {
        precondition(!components.isEmpty, "a path inside the tree has at least one component")
        return (try folder(components.dropLast(), creatingWith: mode, created: created), components[components.count - 1])
    }

    /// Forgets the walks to `components` and to everything under it (it moved or went away).
    func forget(under components: [String]) {
        guard !components.isEmpty else {
            return forgetAll()
        }
        let key = components.joined(separator: "/")
        cache = cache.filter { path, _ in path != key && !path.hasPrefix(key + "/") }
    }

    /// Forgets every walk.
    func forgetAll() {
        cache.removeAll()
    }
}

@available(*, unavailable)
extension PathWalker: Sendable {}
