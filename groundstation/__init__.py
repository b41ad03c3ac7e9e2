"""The Queqiao ground-station daemon: links in, frame and packet chains, decode, sinks, commanding."""
