package chaos

// OriginalProtocolOptions declares the options the original Vaurien gave
// every protocol: reuse_socket, buffer and keep_alive. Every built-in
// protocol accepts them, so that the original's [protocol:NAME] sections
// and --protocol-NAME-OPTION flags keep loading, and none of them changes
// anything here: buffer and keepAlive say why for the protocol at hand.
func OriginalProtocolOptions(buffer, keepAlive string) Options {
	return Options{
		{Name: "reuse_socket", Kind: Bool, Default: false,
			Doc:      "the original's reuse of one backend socket across client connections",
			NoEffect: "every client connection gets a backend connection of its own"},
		{Name: "buffer", Kind: Int, Default: int64(8124), Min: Range(0), Max: Range(1 << 31),
			Doc:      "the original's read size, in bytes",
			NoEffect: buffer},
		{Name: "keep_alive", Kind: Bool, Default: false,
			Doc:      "the original's switch to keep a connection open after one exchange",
			NoEffect: keepAlive},
	}
}
