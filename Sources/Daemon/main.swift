// Only the command line is parsed here: top-level code is @MainActor in Swift 6, and every
// libev callback lives in Engine.
StrataCommand.main()
