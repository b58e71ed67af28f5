/* Loaded (LD_PRELOAD) into the local clusters' JVMs by scripts/cluster.py: a socket bound to every interface
 * (0.0.0.0 or ::) is bound to the loopback address instead, so nothing the clusters open is reachable from
 * another machine. Needed because Beam's Java servers (the job server's job and artifact services, the fn-API
 * servers each TaskManager or executor opens for its SDK workers) listen on every interface whatever host
 * they are given (gRPC's NettyServerBuilder.forPort), and neither Beam nor Java has a setting for it.
 * Only sockets bound to the wildcard address change; a socket bound to a given address is left as it is.
 *
 *     cc -shared -fPIC -O2 -o loopback_bind.so loopback_bind.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind)
        real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in in = *(const struct sockaddr_in *)addr;
        if (in.sin_addr.s_addr == htonl(INADDR_ANY)) {
            in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&in, sizeof in);
        }
    } else if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 in6 = *(const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr)) {
            /* Java's sockets are dual-stack: the IPv4 loopback, as an IPv4-mapped address, keeps IPv4 clients
             * (127.0.0.1) working. */
            static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
            memcpy(&in6.sin6_addr, mapped, sizeof mapped);
            return real_bind(fd, (const struct sockaddr *)&in6, sizeof in6);
        }
    }
    return real_bind(fd, addr, len);
}
