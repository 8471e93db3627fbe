//! Each MCP method of a gateway session, onto `Relay::forward`; `initialize` starts the
//! upstream session and answers with what the upstream said.

// Logging and resource subscriptions are relayed for the protocol versions that have them.
#![allow(deprecated)]

use std::borrow::Cow;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientNotification, ClientRequest,
    CompleteRequest, CompleteRequestParams, CompleteResult, GetPromptRequest,
    GetPromptRequestParams, GetPromptResponse, InitializeRequestParams, InitializeResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequest, ReadResourceRequestParams,
    ReadResourceResponse, ServerConfig as ServerInfo, ServerResult, SetLevelRequest,
    SetLevelRequestParams, SubscribeRequest, SubscribeRequestParams, UnsubscribeRequest,
    UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler};

use super::relay::{Relay, listing, principal, unexpected};

macro_rules! relayed {
    ($self:ident, $ctx:ident, $request:expr, $variant:ident) => {
        match $self.forward($request, $ctx).await? {
            ServerResult::$variant(r) => Ok(r.into()),
            other => Err(unexpected(&other)),
        }
    };
}

macro_rules! relayed_empty {
    ($self:ident, $ctx:ident, $request:expr) => {
        match $self.forward($request, $ctx).await? {
            ServerResult::EmptyResult(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    };
}

impl ServerHandler for Relay {
    fn get_info(&self) -> ServerInfo {
        self.info
            .lock()
            .expect("info lock")
            .clone()
            .unwrap_or_default()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        // Sessions that start with `initialize`, each with its upstream session.
        Cow::Owned(vec![
            ProtocolVersion::V_2025_03_26,
            ProtocolVersion::V_2025_06_18,
            ProtocolVersion::V_2025_11_25,
        ])
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let principal = principal(&ctx)?;
        ctx.peer.set_peer_info(request.clone());
        *self.hello.lock().expect("hello lock") = Some(request);
        let c = self.connection(&ctx, &principal).await?;
        let peer = c
            .server_info()
            .ok_or_else(|| McpError::internal_error("the upstream did not initialize", None))?;
        let mut info = InitializeResult::new(peer.capabilities);
        info.protocol_version = peer.protocol_version;
        if let Some(server) = peer.server_info {
            info.server_info = server;
        }
        info.instructions = peer.instructions;
        *self.info.lock().expect("info lock") = Some(info.clone());
        Ok(info)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        relayed!(
            self,
            ctx,
            ClientRequest::CallToolRequest(CallToolRequest::new(request)),
            CallToolResult
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        relayed!(
            self,
            ctx,
            ClientRequest::ListToolsRequest(listing(request)),
            ListToolsResult
        )
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        relayed!(
            self,
            ctx,
            ClientRequest::ListResourcesRequest(listing(request)),
            ListResourcesResult
        )
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        relayed!(
            self,
            ctx,
            ClientRequest::ListResourceTemplatesRequest(listing(request)),
            ListResourceTemplatesResult
        )
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        relayed!(
            self,
            ctx,
            ClientRequest::ReadResourceRequest(ReadResourceRequest::new(request)),
            ReadResourceResult
        )
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        relayed_empty!(
            self,
            ctx,
            ClientRequest::SubscribeRequest(SubscribeRequest::new(request))
        )
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        relayed_empty!(
            self,
            ctx,
            ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(request))
        )
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        relayed!(
            self,
            ctx,
            ClientRequest::ListPromptsRequest(listing(request)),
            ListPromptsResult
        )
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        relayed!(
            self,
            ctx,
            ClientRequest::GetPromptRequest(GetPromptRequest::new(request)),
            GetPromptResult
        )
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        relayed!(
            self,
            ctx,
            ClientRequest::CompleteRequest(CompleteRequest::new(request)),
            CompleteResult
        )
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        relayed_empty!(
            self,
            ctx,
            ClientRequest::SetLevelRequest(SetLevelRequest::new(request))
        )
    }

    async fn on_roots_list_changed(&self, _ctx: NotificationContext<RoleServer>) {
        if let Some(c) = self.connection.lock().await.as_ref() {
            let _ = c
                .peer()
                .send_notification(ClientNotification::RootsListChangedNotification(
                    Default::default(),
                ))
                .await;
        }
    }
}
