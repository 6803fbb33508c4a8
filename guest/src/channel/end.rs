//! What the two *ends* of a channel, [`Sender`] and [`Receiver`], have alike, written
//! once for both: the channel's id, cloning (another handle to the same host
//! channel), `Debug`, and travelling in a message: serializing an end puts a clone
//! of its handle beside the bytes, deserializing takes it back out (see
//! [`message`](crate::message)).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::receiver::Receiver;
use super::sender::Sender;
use crate::bindings::channel as wit;
use crate::message::{deserialize_endpoint, serialize_endpoint};

/// The impls of one end, given its type (whose name is also its case of the WIT
/// `endpoint`) and the word for it in an error.
macro_rules! end {
    ($end:ident, $what:literal) => {
        impl<T> $end<T> {
            /// The channel's id, unique among the channels this program opened. (A
            /// channel of another program that came through an application's channel
            /// may have the same id as one of this program's.)
            pub fn channel_id(&self) -> u64 {
                self.inner.id()
            }
        }

        impl<T> Clone for $end<T> {
            fn clone(&self) -> Self {
                $end::new(self.inner.clone()).with_codec(self.codec)
            }
        }

        impl<T> fmt::Debug for $end<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($end))
                    .field("channel", &self.inner.id())
                    .finish()
            }
        }

        impl<T> Serialize for $end<T> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_endpoint(wit::Endpoint::$end(self.inner.clone()), s)
            }
        }

        impl<'de, T> Deserialize<'de> for $end<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_endpoint(d, $what, |endpoint| match endpoint {
                    wit::Endpoint::$end(inner) => Some($end::new(inner)),
                    _ => None,
                })
            }
        }
    };
}

end!(Sender, "sender");
end!(Receiver, "receiver");
