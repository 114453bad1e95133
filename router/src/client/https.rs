//! The DUIS client: POSTs DUIS XML to a router's (or DCC Boxed's) service paths over HTTPS
//! with a client certificate, or over plain HTTP, on one keep-alive connection.
//!
//! It is a transport, not a validator: it returns the status and body as they came; DUIS
//! answers are read with `dcc_signing::duis`.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::ingress::https::{DuisService, LANE_HEADER};
use crate::ingress::tls::{https_client_config, TlsError, TlsMaterial};

/// Why a DUIS request got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DuisClientError {
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TCP connection or the TLS handshake failed.
    #[error("connect {server}: {source}")]
    Connect {
        /// Whom.
        server: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server name is not a valid DNS name or IP address.
    #[error("server name {name:?} is not a DNS name or IP address")]
    ServerName {
        /// The name given.
        name: String,
        /// Why.
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// HTTP failed (the connection closed, a malformed answer).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// A DUIS answer as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuisReply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
    /// The lane that carried the request, from the router's
    /// [`LANE_HEADER`] (absent from DCC Boxed, and for
    /// requests refused before classification).
    pub lane: Option<crate::Lane>,
}

/// One connection to a DUIS endpoint.
#[derive(Debug)]
pub struct DuisClient {
    send: http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl DuisClient {
    /// Connects over HTTPS, presenting `tls`'s client certificate and trusting its CA for the
    /// server, whose certificate must name `server_name`.
    pub async fn connect_tls(
        server: SocketAddr,
        server_name: &str,
        tls: &TlsMaterial,
    ) -> Result<Self, DuisClientError> {
        let config = https_client_config(tls)?;
        let name =
            rustls::pki_types::ServerName::try_from(server_name.to_owned()).map_err(|source| {
                DuisClientError::ServerName {
                    name: server_name.to_owned(),
                    source,
                }
            })?;
        let tcp = tokio::net::TcpStream::connect(server)
            .await
            .map_err(|source| DuisClientError::Connect { server, source })?;
        let _ = tcp.set_nodelay(true);
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|source| DuisClientError::Connect { server, source })?;
        Self::over(stream, server_name).await
    }

    /// Connects over plain HTTP (test rigs; DCC Boxed's own DUIS port speaks it).
    pub async fn connect_plain(server: SocketAddr) -> Result<Self, DuisClientError> {
        let tcp = tokio::net::TcpStream::connect(server)
            .await
            .map_err(|source| DuisClientError::Connect { server, source })?;
        let _ = tcp.set_nodelay(true);
        Self::over(tcp, &server.to_string()).await
    }

    async fn over<S>(io: S, host: &str) -> Result<Self, DuisClientError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = http1::handshake(TokioIo::new(io)).await?;
        // The connection task ends when the client is dropped or the server closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(DuisClient {
            send,
            host: host.to_owned(),
        })
    }

    /// POSTs `xml` to `service`'s path and reads the whole answer.
    pub async fn post(
        &mut self,
        service: DuisService,
        xml: impl Into<Bytes>,
    ) -> Result<DuisReply, DuisClientError> {
        self.post_path(service.path(), xml).await
    }

    /// POSTs `xml` to any path (tests of the ingress's refusals use other paths).
    pub async fn post_path(
        &mut self,
        path: &str,
        xml: impl Into<Bytes>,
    ) -> Result<DuisReply, DuisClientError> {
        self.send.ready().await?;
        let req = Request::post(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "application/xml")
            .body(Full::new(xml.into()))?;
        let res = self.send.send_request(req).await?;
        let status = res.status();
        let content_type = res
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let lane = res
            .headers()
            .get(LANE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = res.into_body().collect().await?.to_bytes();
        Ok(DuisReply {
            status,
            content_type,
            body,
            lane,
        })
    }
}
