// TCP ports for tests. Prefer port 0: let the server bind "127.0.0.1:0" and read the bound port
// back (WriterServer::port(), StatusServer::port(), the test collector). Use FreePort() only
// where a port must be known before anything binds it (a flag of a child process, a DSN that
// must find nothing listening).
#ifndef ECOMSTREAM_TESTS_TESTING_PORTS_H_
#define ECOMSTREAM_TESTS_TESTING_PORTS_H_

namespace ecomstream::testing {

// A TCP port on 127.0.0.1 that nothing listens on right now, reserved for this process until it
// exits: never returned twice in a process, and never to two processes at once (a lock file per
// port under $ECOMSTREAM_TEST_PORT_LOCKS, default /tmp/ecomstream-port-locks, held with flock).
// Another program that binds port 0 can still take it before the caller binds it, but no other
// test can. Aborts if no port can be reserved.
int FreePort();

}  // namespace ecomstream::testing

#endif  // ECOMSTREAM_TESTS_TESTING_PORTS_H_
