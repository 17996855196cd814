"""os-vif plugin that plugs VIFs through the ptnetd host agent."""
