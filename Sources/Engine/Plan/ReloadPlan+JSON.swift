import ConfigModel

extension ReloadPlan {
    /// `reload plan json`: the same plan as one JSON document for tools.
    ///
    ///     {"success": true, "generation": {"id": 5, "hash": "…"}, "candidate": {"hash": "…"},
    ///      "changes": [{"mark": "+", "kind": "server", "line": "+ server app/s3",
    ///                   "backend": "app", "server": "s3"}, …],
    ///      "errors": []}
    ///
    /// A refused candidate has no changes and its errors as
    /// `{"file": …, "line": …, "message": …, "text": "file:line: message"}`.
    public var json: String {
        var out = "{\"success\":\(succeeds)"
        out += ",\"generation\":" + (current.map { "{\"id\":\($0.id),\"hash\":\($0.hash.jsonQuoted)}" } ?? "null")
        out += ",\"candidate\":" + (candidateHash.map { "{\"hash\":\($0.jsonQuoted)}" } ?? "null")
        out += ",\"changes\":["
        out += changes.map { change in
            var object = "{\"mark\":\(change.mark.rawValue.jsonQuoted),\"kind\":\(change.kind.rawValue.jsonQuoted)"
            object += ",\"line\":\(change.line.jsonQuoted)"
            for field in change.fields { object += ",\(field.name.jsonQuoted):\(field.value.json)" }
            return object + "}"
        }.joined(separator: ",")
        out += "],\"errors\":["
        out += errors.map { error in
            var object = "{"
            if let location = error.location {
                object += "\"file\":\(location.file.jsonQuoted),\"line\":\(location.line),"
            }
            return object + "\"message\":\(error.message.jsonQuoted),\"text\":\(error.description.jsonQuoted)}"
        }.joined(separator: ",")
        return out + "]}"
    }
}

extension ReloadPlan.Field.Value {
    var json: String {
        switch self {
        case .string(let s): s.jsonQuoted
        case .number(let n): String(n)
        case .list(let items): "[" + items.map(\.jsonQuoted).joined(separator: ",") + "]"
        }
    }
}
