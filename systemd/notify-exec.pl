#!/usr/bin/perl
# notify-exec.pl PROGRAM [ARG...]: how pifleet's units start their daemons.
#
# systemd takes Type=notify messages (READY=1, WATCHDOG=1) only from the unit's main PID
# (NotifyAccess=main), and Node cannot open an AF_UNIX datagram socket. So this connects one to
# $NOTIFY_SOCKET, keeps it open across exec, and execs PROGRAM in this same process, with
# PIFLEET_NOTIFY_FD naming the descriptor. exec keeps the PID, so PROGRAM is the unit's main
# process; a write(2) on a connected datagram socket sends one datagram carrying the writer's own
# credentials, so every notification @pifleet/core's createNotifier() writes there comes from
# the main PID. Without NOTIFY_SOCKET (not under systemd) it only execs PROGRAM.
#
# Only Socket and Fcntl are used: both are in perl-base, which is Essential on Debian and
# Raspberry Pi OS, so every Pi and server already has them. One copy lives in the repository
# (systemd/notify-exec.pl); `pifleet install` ships it inside each role's bundle.
use strict;
use warnings;
use Socket qw(AF_UNIX SOCK_DGRAM pack_sockaddr_un);
use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC F_GETFL F_SETFL O_NONBLOCK);

@ARGV or die "usage: notify-exec.pl PROGRAM [ARG...]\n";

# A number inherited from elsewhere would name some other descriptor: only ours is passed on.
delete $ENV{PIFLEET_NOTIFY_FD};
# File scope: the socket must stay open until exec.
my $socket;
my $target = $ENV{NOTIFY_SOCKET};
if (defined $target && $target ne "") {
  if ($target =~ m{^[/@]}) {
    # "@name" is a socket in the abstract namespace: its address starts with a NUL byte.
    my $address = $target =~ /^@/ ? "\0" . substr($target, 1) : $target;
    if (socket($socket, AF_UNIX, SOCK_DGRAM, 0) && connect($socket, pack_sockaddr_un($address))) {
      # Perl opens descriptors above $^F (2) close-on-exec; this one must survive the exec.
      my $fd_flags = fcntl($socket, F_GETFD, 0) or die "notify-exec: fcntl F_GETFD: $!\n";
      fcntl($socket, F_SETFD, $fd_flags & ~FD_CLOEXEC) or die "notify-exec: fcntl F_SETFD: $!\n";
      # Non-blocking: a daemon sends from its event loop, and a datagram systemd cannot take
      # right now is better dropped (the next watchdog ping follows) than waited for.
      my $fl_flags = fcntl($socket, F_GETFL, 0) or die "notify-exec: fcntl F_GETFL: $!\n";
      fcntl($socket, F_SETFL, $fl_flags | O_NONBLOCK) or die "notify-exec: fcntl F_SETFL: $!\n";
      $ENV{PIFLEET_NOTIFY_FD} = fileno($socket);
    } else {
      warn "notify-exec: cannot connect to NOTIFY_SOCKET=$target ($!): starting $ARGV[0] without a notify socket\n";
    }
  } else {
    warn "notify-exec: NOTIFY_SOCKET=$target is neither a socket path (/...) nor an abstract name (\@...): starting $ARGV[0] without a notify socket\n";
  }
}
exec { $ARGV[0] } @ARGV;
die "notify-exec: cannot run $ARGV[0]: $!\n";
