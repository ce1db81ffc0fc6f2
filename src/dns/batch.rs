//! Batched UDP I/O on Linux: one `recvmmsg` takes up to [`BATCH`] queries
//! waiting in the socket, one `sendmmsg` sends the answers written for
//! them. Under load this divides the system-call and wake-up cost per query
//! by the batch size; with one query waiting it costs the same as
//! `recvfrom` + `sendto`.

use socket2::SockAddr;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call.
pub const BATCH: usize = 32;

/// Receive and send buffers for one socket.
pub struct Batch {
    pub buffers: Vec<[u8; 4096]>,
    pub lengths: [usize; BATCH],
    pub sources: [Option<SocketAddr>; BATCH],
    /// Answers to send: (destination, bytes).
    pub replies: Vec<(SocketAddr, usize)>,
    pub out: Vec<[u8; 4096]>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            buffers: vec![[0; 4096]; BATCH],
            lengths: [0; BATCH],
            sources: [None; BATCH],
            replies: Vec::with_capacity(BATCH),
            out: vec![[0; 4096]; BATCH],
        }
    }
}

/// Waits for queries and receives as many as are waiting (at most [`BATCH`]).
pub async fn receive(socket: &UdpSocket, batch: &mut Batch) -> io::Result<usize> {
    socket
        .async_io(Interest::READABLE, || recvmmsg(socket, batch))
        .await
}

fn recvmmsg(socket: &UdpSocket, batch: &mut Batch) -> io::Result<usize> {
    let mut addresses: [MaybeUninit<libc::sockaddr_storage>; BATCH] =
        [const { MaybeUninit::uninit() }; BATCH];
    let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    for i in 0..BATCH {
        iovecs[i].write(libc::iovec {
            iov_base: batch.buffers[i].as_mut_ptr().cast(),
            iov_len: batch.buffers[i].len(),
        });
        // SAFETY: an all-zero msghdr is valid; the fields set below point
        // into arrays that outlive the call.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_name = addresses[i].as_mut_ptr().cast();
        header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        header.msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
        header.msg_hdr.msg_iovlen = 1;
        headers[i].write(header);
    }
    // SAFETY: `headers` holds BATCH initialised entries whose buffers are
    // valid for writing for their stated lengths.
    let n = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr().cast(),
            BATCH as u32,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for i in 0..n {
        // SAFETY: the kernel filled the first `n` headers and their addresses.
        let header = unsafe { headers[i].assume_init_ref() };
        batch.lengths[i] = header.msg_len as usize;
        // SAFETY: the kernel wrote a sockaddr of its family there.
        batch.sources[i] = unsafe { socket_addr(addresses[i].as_ptr()) };
    }
    Ok(n)
}

/// Sends every reply in `batch.replies` (from `batch.out`), waiting for
/// room when the socket buffer is full.
pub async fn send(socket: &UdpSocket, batch: &mut Batch) {
    let mut sent = 0;
    while sent < batch.replies.len() {
        match socket
            .async_io(Interest::WRITABLE, || sendmmsg(socket, batch, sent))
            .await
        {
            Ok(n) => sent += n.max(1),
            Err(error) => {
                tracing::debug!(%error, "UDP send error");
                // Skip the datagram that failed (e.g. an unreachable destination).
                sent += 1;
            }
        }
    }
    batch.replies.clear();
}

fn sendmmsg(socket: &UdpSocket, batch: &mut Batch, from: usize) -> io::Result<usize> {
    let count = batch.replies.len() - from;
    let mut addresses: Vec<SockAddr> = Vec::with_capacity(count);
    let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    for &(destination, _) in &batch.replies[from..] {
        addresses.push(SockAddr::from(destination));
    }
    for (k, (&(_, len), slot)) in batch.replies[from..]
        .iter()
        .zip(batch.out[from..].iter_mut())
        .enumerate()
    {
        iovecs[k].write(libc::iovec {
            iov_base: slot.as_mut_ptr().cast(),
            iov_len: len,
        });
        // SAFETY: as in `recvmmsg`.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_name = addresses[k].as_ptr() as *mut libc::c_void;
        header.msg_hdr.msg_namelen = addresses[k].len();
        header.msg_hdr.msg_iov = iovecs[k].as_mut_ptr();
        header.msg_hdr.msg_iovlen = 1;
        headers[k].write(header);
    }
    // SAFETY: `count` headers are initialised and point to live buffers.
    let n = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr().cast(),
            count as u32,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// The address in a `sockaddr_storage` filled by the kernel.
///
/// # Safety
/// `storage` must point to an initialised `sockaddr_in` or `sockaddr_in6`
/// (as its family says).
unsafe fn socket_addr(storage: *const libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    // SAFETY: the caller guarantees the family and the layout that goes with it.
    unsafe {
        match i32::from((*storage).ss_family) {
            libc::AF_INET => {
                let a = &*storage.cast::<libc::sockaddr_in>();
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                let a = &*storage.cast::<libc::sockaddr_in6>();
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}
