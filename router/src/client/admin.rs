//! The admin client: one QUIC connection with an admin User's certificate, a JSON frame each
//! way per call (the protocol's types are [`AdminRequest`], [`AdminCall`], [`AdminAnswer`]).
//!
//! `dcc-router admin …`, loadgen's scenario events and the process tests all use it, so the
//! admin protocol has one client.

use std::net::SocketAddr;

use crate::client::quic::{client_endpoint, ClientError};
use crate::ingress::frame::{read_frame, write_frame, FrameError};
use crate::ingress::tls::TlsMaterial;
use crate::ingress::wire::WireAnswer;
pub use crate::server::admin_proto::{AdminAnswer, AdminCall, AdminRequest, StatusReport};
pub use crate::server::capacity::CapacityEstimate;

/// Why an admin call got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminClientError {
    /// The client endpoint could not be made (TLS material, socket).
    #[error(transparent)]
    Endpoint(#[from] ClientError),
    /// The connection was refused or failed during the handshake.
    #[error("connect {server}: {source}")]
    Connect {
        /// Whom.
        server: SocketAddr,
        /// Why.
        #[source]
        source: quinn::ConnectError,
    },
    /// The handshake failed, or the connection closed.
    #[error("connect {server}: {source}")]
    Connection {
        /// Whom.
        server: SocketAddr,
        /// Why.
        #[source]
        source: quinn::ConnectionError,
    },
    /// A frame could not be written or read.
    #[error("admin call: {0}")]
    Frame(#[from] FrameError),
    /// The request could not be encoded, or the answer is not JSON.
    #[error("admin answer: {0}")]
    Json(#[from] serde_json::Error),
    /// The server closed the stream without answering.
    #[error("the server closed the stream without answering (is this certificate an admin's?)")]
    NoAnswer,
    /// The server answered with a Service Request answer: the certificate is not an admin's.
    #[error("the server treated this as a Service Request ({code} {detail}): the certificate is not an admin's")]
    NotAdmin {
        /// The Service Request answer's code.
        code: String,
        /// Its detail.
        detail: String,
    },
}

/// Sends one admin request (no reason recorded) and returns the answer.
pub async fn admin_call(
    server: SocketAddr,
    server_name: &str,
    tls: &TlsMaterial,
    request: &AdminRequest,
) -> Result<AdminAnswer, AdminClientError> {
    admin_call_with(
        server,
        server_name,
        tls,
        &AdminCall {
            request: request.clone(),
            reason: None,
        },
    )
    .await
}

/// Sends one admin request with its reason and returns the answer.
pub async fn admin_call_with(
    server: SocketAddr,
    server_name: &str,
    tls: &TlsMaterial,
    call: &AdminCall,
) -> Result<AdminAnswer, AdminClientError> {
    let conn = AdminClient::connect(server, server_name, tls).await?;
    let answer = conn.call(call).await;
    conn.close().await;
    answer
}

/// An admin connection for several calls (a bulk import).
#[derive(Debug)]
pub struct AdminClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl AdminClient {
    /// Connects with an admin User's TLS material.
    pub async fn connect(
        server: SocketAddr,
        server_name: &str,
        tls: &TlsMaterial,
    ) -> Result<Self, AdminClientError> {
        let endpoint = client_endpoint(server, tls)?;
        let conn = endpoint
            .connect(server, server_name)
            .map_err(|source| AdminClientError::Connect { server, source })?
            .await
            .map_err(|source| AdminClientError::Connection { server, source })?;
        Ok(AdminClient { endpoint, conn })
    }

    /// One call: a stream, a frame each way.
    pub async fn call(&self, call: &AdminCall) -> Result<AdminAnswer, AdminClientError> {
        let server = self.conn.remote_address();
        let (mut send, mut recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|source| AdminClientError::Connection { server, source })?;
        let body = serde_json::to_vec(call)?;
        write_frame(&mut send, &body).await?;
        let _ = send.finish();
        let frame = read_frame(&mut recv)
            .await?
            .ok_or(AdminClientError::NoAnswer)?;
        serde_json::from_slice(&frame).map_err(|e| match WireAnswer::decode(&frame) {
            Ok(a) => AdminClientError::NotAdmin {
                code: a.code,
                detail: a.detail,
            },
            Err(_) => AdminClientError::Json(e),
        })
    }

    /// Closes the connection and waits for the close to be sent.
    pub async fn close(self) {
        self.conn.close(quinn::VarInt::from_u32(0), b"done");
        self.endpoint.wait_idle().await;
    }
}
