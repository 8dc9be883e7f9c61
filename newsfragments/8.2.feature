New [gateway] keys reflection_timeout_status and link_loss_grace; a digest-authenticated SIP user's JID comes from its user name, not its From.
