# Recipe: a field update with ActiveRecord that fails fast when another operation is in the way.
require "active_record"

class DatabaseField < ActiveRecord::Base
  self.table_name = "database_field"
end

class FieldBusy < StandardError
  attr_reader :detail # who is in the way: process, application_name, how long

  def initialize(message, detail)
    super(message)
    @detail = detail
  end
end

def update_field(app_id, table_id, field_id, name)
  ActiveRecord::Base.transaction do
    ActiveRecord::Base.connection.execute(ActiveRecord::Base.sanitize_sql(
      ["SELECT lockhier.lock_field(?, ?, ?, 'field__update')", app_id, table_id, field_id]))
    DatabaseField.where(id: field_id).update_all(name: name)
  end
rescue ActiveRecord::LockWaitTimeout => e # SQLSTATE 55P03, "operation in progress: ..."
  error = e.cause.result
  raise FieldBusy.new(error.error_field(PG::PG_DIAG_MESSAGE_PRIMARY), error.error_field(PG::PG_DIAG_MESSAGE_DETAIL))
end
