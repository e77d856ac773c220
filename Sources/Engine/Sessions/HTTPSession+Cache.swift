import HTTP1
import ConfigModel
import Glibc

/// An answer being copied into a cache as it goes to the client (`http-response cache-store`):
/// the head as strata wrote it, then the body bytes as the server framed them. Dropped when the
/// answer grows past `max-object-size` or does not end well.
final class HTTPCacheCapture {
    let cache: HTTPCache
    let plan: HTTPCacheStorePlan
    let hash: UInt64
    let key: [UInt8]
    var head: [UInt8]
    var etag: Range<Int>?
    var body: [UInt8] = []

    init(cache: HTTPCache, plan: HTTPCacheStorePlan, hash: UInt64, key: [UInt8], head: [UInt8], etag: Range<Int>?) {
        self.cache = cache
        self.plan = plan
        self.hash = hash
        self.key = key
        self.head = head
        self.etag = etag
    }
}

extension HTTPSession {
    // MARK: cache-use

    /// After the request rules chose to forward: a fresh answer of the cache `cache-use` named is
    /// sent from it (true), or the request goes on to a server (false). The lookup and the hit are
    /// counted by the proxy whose rule ran.
    func serveFromCache(_ input: UnsafeRawBufferPointer, frontend: Frontend, backend: Backend, scratch: HTTPRuleScratch) -> Bool {
        guard let facts = scratch.cache, let cache = facts.cache, !facts.ignore, !facts.key.isEmpty else { return false }
        let counters = facts.byBackend ? backend.counters : frontend.counters
        counters[loop].cacheLookups += 1
        let now = HTTPCachePolicy.wallSeconds()
        guard let entry = facts.key.withUnsafeBytes({ cache.lookup(hash: facts.hash, key: $0, variant: facts.variant, now: now) }) else {
            return false
        }
        counters[loop].cacheHits += 1
        let notModified = withUnsafePointer(to: requestParser.head) { head in
            HTTPCachePolicy.notModified(HTTPMessageView(input: input, head: head, edits: scratch.request), entry: entry)
        }
        consumeHead(input)
        // The answer: the stored head (a 304's status line instead of its own), its Age, then
        // the body unless the request is a HEAD or the answer a 304.
        let out = scratch.reply
        out.reset()
        var head = entry.head
        if notModified, let lineEnd = HTTPRuleBytes.firstIndex(of: UInt8(ascii: "\n"), in: head) {
            _ = out.append("HTTP/1.1 304 Not Modified\r\n")
            head = UnsafeRawBufferPointer(rebasing: head[(lineEnd + 1)...])
        }
        _ = out.append(head)
        _ = out.append("age: ")
        _ = out.appendDecimal(entry.age(now: now))
        _ = out.append("\r\n")
        guard !out.overflowed else {
            respondLocally(status: 500)
            return true
        }
        let body = notModified || transaction.method == .head ? HTTPRuleBytes.empty : entry.body
        entry.beginSending()
        transaction.cacheEntry = entry
        transaction.applet = "<CACHE>"
        sendLocal(HTTPLocalResponse(status: notModified ? 304 : 200, head: out.bytes(from: 0), body: body))
        return true
    }

    // MARK: cache-store

    /// After the answer's head went to the client: starts copying the answer when `cache-store`
    /// allowed it (its head is the one the rules left, `HTTPCacheRequest.head`).
    func beginCacheStore() {
        guard let facts = scratch?.cache, let cache = facts.storeIn, let plan = facts.plan,
              transaction.compressor == nil, responseParser.head.framing != .untilClose else { return }
        transaction.cacheCapture = HTTPCacheCapture(cache: cache, plan: plan, hash: facts.hash, key: facts.key,
                                                    head: facts.head, etag: facts.etag)
    }

    /// Body bytes of the answer being stored, as the parser consumed them.
    func captureForCache(_ bytes: UnsafeRawBufferPointer) {
        guard let capture = transaction.cacheCapture, bytes.count > 0 else { return }
        if capture.head.count + capture.body.count + bytes.count > capture.cache.section.maxObjectSize {
            transaction.cacheCapture = nil
            return
        }
        capture.body.append(contentsOf: bytes)
    }

    /// The answer ended well: it goes into the cache.
    func finishCacheStore() {
        guard let capture = transaction.cacheCapture else { return }
        transaction.cacheCapture = nil
        let plan = capture.plan
        let entry = capture.head.withUnsafeBytes { head in
            HTTPCacheEntry(hash: capture.hash, key: capture.key, signature: plan.signature, variant: plan.variant, head: head,
                           body: capture.body, storedAt: HTTPCachePolicy.wallSeconds(), expire: plan.expire,
                           originAge: plan.originAge, lastModified: plan.lastModified, etag: capture.etag)
        }
        capture.cache.store(entry, now: HTTPCachePolicy.wallSeconds())
    }
}
