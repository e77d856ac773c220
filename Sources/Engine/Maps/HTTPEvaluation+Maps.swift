extension HTTPEvaluation {
    /// `set-map(FILE) KEY VALUE`: the first entry whose key is KEY takes VALUE, or a new entry is
    /// added at the end, as HAProxy's action (and the admin socket's `set map`, `add map`). A key
    /// or value the map's converters could not read (an invalid regex, address, integer) changes
    /// nothing. An entry that already holds VALUE is left as it is, with nothing republished.
    func setMapEntry(_ map: SharedMap, _ keyFormat: HTTPCompiledFormat, _ valueFormat: HTTPCompiledFormat) {
        guard let keyText = render(keyFormat, .raw) else { return }
        let key = Array(keyText)
        guard let valueText = render(valueFormat, .raw) else { return }
        let value = Array(valueText)
        guard MapCommands.problem(map, key: key, value: value) == nil else { return }
        map.updateIfChanged({ entries, nextID in
            if let i = entries.firstIndex(where: { $0.key == key }) {
                guard entries[i].value != value else { return false }
                entries[i].value = value
            } else {
                entries.append(MapSnapshot.Entry(id: nextID(), key: key, value: value, line: 0))
            }
            return true
        })
    }

    /// `del-map(FILE) KEY`: every entry whose key is KEY goes (HAProxy's `pat_ref_delete`).
    func deleteMapEntry(_ map: SharedMap, _ keyFormat: HTTPCompiledFormat) {
        guard let keyText = render(keyFormat, .raw) else { return }
        let key = Array(keyText)
        map.updateIfChanged({ entries, _ in
            let before = entries.count
            entries.removeAll { $0.key == key }
            return entries.count != before
        })
    }
}
